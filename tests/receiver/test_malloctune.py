"""receiver/server/malloctune.py: glibc keeps a delivery's memory for the next one, unless the
environment says otherwise. Each case runs in a fresh interpreter: malloc settings are per process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A delivery's allocations in miniature: a body grown from 64 KiB chunks, records cut out
# of it, all freed; repeated, counting the minor page faults of the repeats.
_DELIVERIES = """
import resource, sys
from receiver.server import malloctune
tuned = malloctune.tune() if sys.argv[1] == "tune" else None
def delivery():
    body = bytearray()
    for _ in range(112):
        body += b"y" * 65536
    records = [bytes(body[i << 20 : (i + 1) << 20]) for i in range(6)]
    del body, records
delivery()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    delivery()
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux's")


def _run(mode: str, **env: str) -> tuple[str, int]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    done = subprocess.run(
        [sys.executable, "-c", _DELIVERIES, mode],
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        check=True,
    )
    tuned, faults = done.stdout.split()
    return tuned, int(faults)


def test_tuned_deliveries_reuse_their_memory_instead_of_faulting_it_in_again():
    _, untuned_faults = _run("leave")
    tuned, tuned_faults = _run("tune")
    assert tuned == "True"
    # glibc's defaults give part of each delivery's pages back to the kernel (measured: ~200
    # of its ~3,300 pages each time here; more with the receiver's mix of threads and sizes).
    assert untuned_faults > 1_000
    assert tuned_faults < untuned_faults / 10


def test_the_operators_malloc_settings_in_the_environment_are_left_alone():
    tuned, _ = _run("tune", GLIBC_TUNABLES="glibc.malloc.trim_threshold=131072")
    assert tuned == "False"
