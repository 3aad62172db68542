"""Which OpenTelemetry decoder runs: the compiled one wherever `make setup` could build it.

The compiled decoder's own tests skip where it is absent; this one makes its absence seen."""

from __future__ import annotations

import os

from receiver.formats import otel


def test_the_compiled_decoder_runs_unless_switched_off():
    if os.environ.get("RECEIVER_NO_EXTENSIONS") == "1":
        assert otel.compiled_decode is None
        assert otel.DECODER == "python (RECEIVER_NO_EXTENSIONS=1)"
    else:
        assert otel.compiled_decode is not None, f"the decoder is {otel.DECODER}: run make setup to build it"
        assert otel.DECODER == "compiled"
