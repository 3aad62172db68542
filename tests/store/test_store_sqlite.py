"""What only the SQLite store does: files, durability settings, failures, its worker threads."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from receiver.model import MINUTE_MS
from receiver.store import SQLiteStore, StoreConfigError, StoreError, open_store_from_url
from receiver.store.base import DEFAULT_REQUEST_TTL_S, PRUNE_INTERVAL_S
from receiver.store.sqlite.schema import SCHEMA_VERSION
from tests.builders import T0, make_sample, make_series, many_samples


def peek(store: SQLiteStore, sql: str, *params) -> list[tuple]:
    """Read the store's file through a second connection, as an operator would."""
    with sqlite3.connect(store.path) as conn:
        return conn.execute(sql, params).fetchall()


def one_sentence(message: str) -> bool:
    return "\n" not in message and ". " not in message.rstrip(".")


# -- files -----------------------------------------------------------------------


async def test_reopening_the_file_keeps_samples_and_series_ids(sqlite_factory):
    samples = [make_sample(series=make_series(table=f"T{i}"), minute=m) for i in range(3) for m in range(2)]
    first = sqlite_factory()
    await first.open()
    await first.commit("r1", samples)
    series_rows = peek(first, "SELECT * FROM series ORDER BY id")
    await first.close()

    again = sqlite_factory()
    await again.open()
    assert sorted(await again.samples(0, 2**62), key=repr) == sorted(samples, key=repr)
    assert await again.is_committed("r1")
    # Known series keep their rows; a new minute of them adds samples, not series.
    await again.commit("r2", [make_sample(series=make_series(table=f"T{i}"), minute=5) for i in range(3)])
    assert peek(again, "SELECT * FROM series ORDER BY id") == series_rows
    assert await again.count_samples() == 9
    await again.close()


async def test_the_default_url_creates_its_folder_under_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = open_store_from_url("sqlite:///./data/metrics.db")
    await store.open()
    await store.commit("r1", [make_sample()])
    await store.close()
    assert (tmp_path / "data" / "metrics.db").is_file()


async def test_the_file_uses_write_ahead_logging(sqlite_store):
    assert peek(sqlite_store, "PRAGMA journal_mode") == [("wal",)]


async def test_a_folder_that_cannot_be_created_is_a_config_error(tmp_path):
    (tmp_path / "blocker").write_text("a file where a folder should be")
    store = SQLiteStore(tmp_path / "blocker" / "data" / "metrics.db")
    with pytest.raises(StoreConfigError) as caught:
        await store.open()
    assert "blocker" in str(caught.value) and one_sentence(str(caught.value))


async def test_a_directory_as_the_database_path_is_a_config_error(tmp_path):
    with pytest.raises(StoreConfigError) as caught:
        await SQLiteStore(tmp_path).open()
    assert str(tmp_path) in str(caught.value) and one_sentence(str(caught.value))


async def test_a_file_that_is_not_sqlite_is_a_config_error(tmp_path):
    path = tmp_path / "metrics.db"
    path.write_bytes(b"this is not a database, just text long enough to have a header" * 10)
    with pytest.raises(StoreConfigError) as caught:
        await SQLiteStore(path).open()
    assert str(path) in str(caught.value) and one_sentence(str(caught.value))


async def test_another_applications_database_is_a_config_error(tmp_path):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    with pytest.raises(StoreConfigError) as caught:
        await SQLiteStore(path).open()
    assert "not a receiver store" in str(caught.value)
    with sqlite3.connect(path) as conn:  # and it was left as it was
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("users",)]
        assert conn.execute("PRAGMA journal_mode").fetchall() == [("delete",)]


async def test_a_store_from_a_newer_receiver_is_a_config_error(sqlite_factory):
    store = sqlite_factory()
    await store.open()
    await store.close()
    with sqlite3.connect(store.path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreConfigError) as caught:
        await sqlite_factory().open()
    assert "newer" in str(caught.value)


async def test_a_version_1_file_keeps_its_values_and_derives_its_buckets_again(sqlite_factory):
    # Version 1 had no regions: its values stay, as merged values of no region, and every
    # bucket is marked for deriving again so those within the retention gain their regions.
    store = sqlite_factory()
    await store.open()
    await store.commit("r1", [make_sample(minute=0)])
    await store.close()
    with sqlite3.connect(store.path) as conn:
        conn.executescript(
            """
            DROP TABLE derived;
            DROP TABLE entities;
            CREATE TABLE derived (
                step_ms INTEGER NOT NULL, metric TEXT NOT NULL, service TEXT NOT NULL, endpoint TEXT NOT NULL,
                instance TEXT NOT NULL, time_ms INTEGER NOT NULL, scope TEXT NOT NULL, layer TEXT NOT NULL,
                value REAL NOT NULL, PRIMARY KEY (step_ms, metric, service, endpoint, instance, time_ms)
            ) WITHOUT ROWID;
            UPDATE bucket_versions SET derived_version = version;
            PRAGMA user_version = 1;
            """
        )
        conn.execute(
            "INSERT INTO derived VALUES (?, 'aws_dynamodb_endpoint_x', 's', 'GameScores', '', ?, 'endpoint', 'L', 7.0)",
            (MINUTE_MS, T0),
        )
    again = sqlite_factory()
    await again.open()
    [kept] = await again.derived("aws_dynamodb_endpoint_x", MINUTE_MS, T0, T0)
    assert (kept.endpoint, kept.value, kept.region, kept.merged) == ("GameScores", 7.0, "", True)
    assert await again.stale_buckets(MINUTE_MS, 0) == [T0]
    assert peek(again, "PRAGMA user_version") == [(SCHEMA_VERSION,)] == [(5,)]
    assert await again.entities(T0) == [("s", "L", "GameScores", ())]
    await again.close()


def test_an_unknown_durability_level_is_a_config_error(tmp_path):
    with pytest.raises(StoreConfigError):
        SQLiteStore(tmp_path / "m.db", synchronous="sometimes")


# -- failures --------------------------------------------------------------------


async def test_a_failure_inside_the_transaction_stores_nothing(sqlite_store):
    await sqlite_store.commit("r0", [make_sample(minute=0, value=1.0)])
    # A trigger makes SQLite itself abort the insert of one block in the middle of the request.
    with sqlite3.connect(sqlite_store.path) as conn:
        conn.execute(
            f"CREATE TRIGGER fail BEFORE INSERT ON sample_blocks WHEN NEW.start_ms = {T0 + 2 * MINUTE_MS} "
            "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )
    request = [make_sample(series=make_series(table=f"New{m}"), minute=m) for m in range(4)]
    with pytest.raises(StoreError, match="injected failure"):
        await sqlite_store.commit("r1", request)
    assert await sqlite_store.samples(0, 2**62) == [make_sample(minute=0, value=1.0)]
    assert not await sqlite_store.is_committed("r1")
    assert peek(sqlite_store, "SELECT count(*) FROM series") == [(1,)]


async def test_series_ids_from_a_rolled_back_request_are_not_reused(sqlite_store):
    with sqlite3.connect(sqlite_store.path) as conn:
        conn.execute("CREATE TRIGGER fail BEFORE INSERT ON sample_blocks BEGIN SELECT RAISE(ABORT, 'injected'); END")
    doomed = make_sample(series=make_series(table="Doomed"))
    with pytest.raises(StoreError):
        await sqlite_store.commit("r1", [doomed])
    with sqlite3.connect(sqlite_store.path) as conn:
        conn.execute("DROP TRIGGER fail")
    # The rolled-back row id of "Doomed" now goes to another series; "Doomed" must get its own.
    other = make_sample(series=make_series(table="Other"))
    await sqlite_store.commit("r2", [other])
    await sqlite_store.commit("r3", [doomed])
    assert sorted(await sqlite_store.samples(0, 2**62), key=repr) == sorted([doomed, other], key=repr)


async def test_a_locked_database_is_a_store_error_and_the_store_recovers(sqlite_factory):
    store = sqlite_factory(busy_timeout_ms=50)
    await store.open()
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        with pytest.raises(StoreError) as caught:
            await store.commit("r1", [make_sample()])
        assert not isinstance(caught.value, sqlite3.Error)
        await store.ping()  # readers still get through in WAL mode
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert not await store.is_committed("r1")
    await store.commit("r1", [make_sample()])
    assert await store.count_samples() == 1
    await store.close()


async def test_expired_request_ids_are_deleted_by_a_later_commit(sqlite_store, clock):
    await sqlite_store.commit("old", [])
    clock.advance(DEFAULT_REQUEST_TTL_S + PRUNE_INTERVAL_S)
    await sqlite_store.commit("new", [])
    assert peek(sqlite_store, "SELECT request_id FROM requests") == [("new",)]


# -- the worker threads ----------------------------------------------------------


@pytest.mark.parametrize("operation", ["commit", "samples"])
async def test_the_event_loop_keeps_running_during_a_large_operation(sqlite_store, operation):
    samples = many_samples(40_000)
    if operation == "samples":
        await sqlite_store.commit("setup", samples)
        job = asyncio.create_task(sqlite_store.samples(0, 2**62))
    else:
        job = asyncio.create_task(sqlite_store.commit("big", samples))
    ticks = 0
    while not job.done():  # a blocking store would finish the job before the first tick
        ticks += 1
        await asyncio.sleep(0)
    result = await job
    assert ticks >= 10
    if operation == "samples":
        assert len(result) == len(samples)
    else:
        assert await sqlite_store.count_samples() == len(samples)


async def test_concurrent_commits_all_land(sqlite_store):
    requests = [[make_sample(series=make_series(table=f"T{r}"), minute=m) for m in range(50)] for r in range(8)]
    await asyncio.gather(*(sqlite_store.commit(f"r{r}", batch) for r, batch in enumerate(requests)))
    assert await sqlite_store.count_samples() == 400
    assert all([await sqlite_store.is_committed(f"r{r}") for r in range(8)])


async def test_a_long_read_does_not_hold_up_commits(sqlite_store):
    await sqlite_store.commit("before", [make_sample(minute=0)])
    reading, release = threading.Event(), threading.Event()
    read_samples = sqlite_store._reader_db.samples

    def slow_samples(*args):
        reading.set()
        assert release.wait(30)
        return read_samples(*args)

    sqlite_store._reader_db.samples = slow_samples
    read = asyncio.create_task(sqlite_store.samples(0, 2**62))
    assert await asyncio.to_thread(reading.wait, 30)
    # The reader's thread is busy; the writer's is not.
    await asyncio.wait_for(sqlite_store.commit("during", [make_sample(minute=1)]), 30)
    assert await sqlite_store.is_committed("during")
    assert not read.done()
    release.set()
    # The read began after the commit returned, so it sees it.
    assert {sample.start_ms for sample in await read} == {T0, T0 + MINUTE_MS}


async def test_the_reader_cannot_write(sqlite_store):
    await sqlite_store.commit("r1", [make_sample()])
    with pytest.raises(StoreError, match="readonly"):
        await sqlite_store._read(lambda: sqlite_store._reader_db.conn.execute("DELETE FROM sample_blocks"))
    assert await sqlite_store.count_samples() == 1


async def test_after_close_reads_and_writes_are_store_errors(sqlite_factory):
    store = sqlite_factory()
    await store.open()
    await store.close()
    for call in (store.samples(0, 1), store.derived("m", MINUTE_MS, 0, 1), store.commit("r", [])):
        with pytest.raises(StoreError, match="not open"):
            await call
