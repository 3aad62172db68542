"""The HTTP endpoint stage: one Firehose delivery in, one committed batch of samples out.

- ``body``: reads a body chunk by chunk within the size cap and the shared in-flight byte
  budget, inflating gzip incrementally.
- ``envelope``: the Firehose envelope: limits, request parsing, answers.
- ``handler``: one ``POST /aws/firehose/metrics``: ties body, envelope and records together
  for one request; its failures are receiver/errors.py's, answered in Firehose's envelope.
- ``records``: a delivery's records into the store: decoding pool, slices, quarantine, the
  final commit before the ack.
- ``telemetry``: the endpoint's counters (deliveries by status, records, bytes, latency),
  read by ``/metrics``.
"""
