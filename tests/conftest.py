"""What every test folder shares.

The helpers are plain modules, imported where they are used:

- tests/builders.py: ``T0`` (a minute boundary), ``make_series``, ``make_sample`` (the one sample
  builder), ``make_samples``, ``many_samples``, ``Delivery`` (a Firehose request), ``FakeClock``;
- tests/apps.py: ``receiver_app`` (the receiver's app over a store) and ``serve_app`` (any app
  in-process on 127.0.0.1 at a free port, with the receiver's runner options; HTTPS or the
  receiver's own site on request), whose ``AppClient`` also delivers samples and derives them;
- tests/processes.py: ``ReceiverProcess`` (`python -m receiver serve` on 127.0.0.1 at a free
  port, waiting for its "listening" line, killed at the end), ``run_cli`` (any command run to
  its end), ``post``, ``free_port``;
- tests/certs.py: a throwaway certificate authority and server certificate.

The fixtures below build on them; a folder's conftest.py holds only what is that folder's own
(and may override ``store`` or ``sqlite_store`` with one of its own).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from receiver.store import SQLiteStore, Store, open_store_from_url
from tests.builders import FakeClock
from tests.certs import TlsFiles, make_tls_files


@pytest.fixture
def clock() -> FakeClock:
    """A wall clock that moves only when the test says so."""
    return FakeClock()


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    """An open memory store."""
    opened = open_store_from_url("memory://")
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    """An open SQLite store in the test's temporary folder."""
    opened = SQLiteStore(tmp_path / "metrics.db")
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A CA certificate and a server certificate it signed for 127.0.0.1 and localhost."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))
