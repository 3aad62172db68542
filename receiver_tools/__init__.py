"""The AWS stand-ins and operator tools around the receiver, kept out of its container image.

- ``emulator``: a CloudWatch metric stream delivered by Amazon Data Firehose (the HTTP endpoint
  delivery protocol, retries, S3 error output).
- ``workload``: a seeded DynamoDB workload, the samples the emulator sends.
- ``demo``, ``probe``, ``replay``: the ``python -m receiver demo|probe|replay`` commands.

They use the receiver's packages (formats, model, store); ``receiver/`` never imports this
package at module level. Its command line loads a tool only when that tool's command runs
(and ``quarantine replay`` the emulator when it re-delivers), so ``python -m receiver serve``
runs without it.
"""
