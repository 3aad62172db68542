"""What the format tests share: each OpenTelemetry decoder in turn."""

from __future__ import annotations

import pytest

from receiver.formats import otel


@pytest.fixture(params=["compiled", "reference"])
def decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A test using this runs twice: as the receiver decodes (the compiled decoder, the
    careful walk taking what it declines), and with the careful walk, the reference, alone.
    The compiled run is skipped where the extension is not built or is switched off."""
    if request.param == "reference":
        monkeypatch.setattr(otel, "compiled_decode", None)
    elif otel.compiled_decode is None:
        pytest.skip(f"the compiled decoder does not run here: {otel.DECODER}")
    return str(request.param)
