"""SQLite faults: a full disk and a lock held by another process give 503 with Retry-After,
store nothing, and once the fault is gone the emulator's retries deliver everything once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from receiver.store import SQLiteStore
from tests.faults.steps import (
    assert_stored_exactly,
    deliver_across_fault,
    post_expecting_503,
    receiver_on,
    workload_samples,
)

DISK_BYTES = 8 * 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path):
    """An 8 MiB tmpfs: the real ENOSPC path through SQLite, not a simulation."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        # make test runs as root (it installs Debian packages), so this is a broken machine.
        pytest.fail(f"cannot mount a small tmpfs (make test needs root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(folder: Path) -> Path:
    """Write a file until the disk is full; deleting it frees the space again."""
    filler = folder / "filler"
    chunk = b"\0" * 4096
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(chunk)
        except OSError:
            pass
    return filler


async def test_full_disk_gives_503_and_retries_deliver_everything_once(small_disk):
    samples = workload_samples()
    store = SQLiteStore(small_disk / "metrics.db")
    async with receiver_on(store) as client:
        filler = fill(small_disk)
        before = await store.count_samples()
        refused = await post_expecting_503(client, samples, cause="database or disk is full")
        assert await store.count_samples() == before == 0
        await deliver_across_fault(client, samples, clear_fault=filler.unlink)
        await assert_stored_exactly(store, samples, refused)


_HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("CREATE TABLE IF NOT EXISTS held_by_test (x)")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


async def test_lock_held_by_another_process_gives_503_and_retries_deliver_everything_once(tmp_path):
    samples = workload_samples()
    path = tmp_path / "metrics.db"
    # A short busy timeout so each refused attempt takes a fifth of a second, not five.
    store = SQLiteStore(path, busy_timeout_ms=200)
    async with receiver_on(store) as client:
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLD_LOCK, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout.readline().strip() == "locked"
            refused = await post_expecting_503(client, samples, cause="database is locked")
            assert await store.count_samples() == 0

            def release() -> None:
                holder.stdin.write("\n")
                holder.stdin.flush()
                assert holder.wait(10) == 0

            await deliver_across_fault(client, samples, clear_fault=release)
        finally:
            holder.kill()
            holder.wait(10)
        await assert_stored_exactly(store, samples, refused)
