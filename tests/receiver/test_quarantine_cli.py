"""`python -m receiver quarantine list|replay`: quarantined records are listed, and once the
receiver reads them again (here: a decoder bug that is fixed) they are re-delivered and forgotten."""

from __future__ import annotations

import pytest

import receiver.firehose.records
from receiver.batch import Batch
from receiver.cli.quarantine import replay
from receiver.formats import DecodeError, encode_records
from receiver.server.app import INGEST_PATH
from receiver.store.sqlite import SQLiteStore
from receiver_tools.emulator import EmulatorConfig
from tests.apps import receiver_app, serve_app
from tests.builders import Delivery, make_samples
from tests.processes import run_cli

FORMAT = "opentelemetry0.7"
LABELS = {"env": "prod"}


@pytest.fixture
def buggy_decoder(monkeypatch):
    """A decoder that refuses records of more than 3 samples: a bug the test then fixes."""
    decode = receiver.firehose.records.decode_into

    def buggy(batch, data, *args, **kwargs):
        record = Batch()
        decode(record, data, *args, **kwargs)
        if len(record) > 3:
            raise DecodeError("the decoder has a bug")
        batch.add_samples(record.samples())

    monkeypatch.setattr(receiver.firehose.records, "decode_into", buggy)
    return lambda: monkeypatch.setattr(receiver.firehose.records, "decode_into", decode)


async def test_quarantined_records_are_listed_then_replayed_and_forgotten_after_a_fix(tmp_path, buggy_decoder):
    store = SQLiteStore(tmp_path / "q.db")
    samples = make_samples(6, labels=())  # the labels stored are the delivery's common attributes
    records = [encode_records(samples[:2], FORMAT)[0], encode_records(samples[2:], FORMAT)[0]]
    async with serve_app(receiver_app(store)) as client:
        delivery = Delivery(records=records)
        headers = {**delivery.headers, "X-Amz-Firehose-Common-Attributes": '{"commonAttributes": {"env": "prod"}}'}
        assert (await client.post(INGEST_PATH, data=delivery.body, headers=headers)).status == 200
        assert await store.count_samples() == 2

        listed = run_cli("quarantine", "list", "--store", f"sqlite:///{store.path}")
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.splitlines()[0] == "1 quarantined records"
        assert f"{delivery.request_id}  record 1  " in listed.stdout and "the decoder has a bug" in listed.stdout

        buggy_decoder()  # the fix is deployed
        report = await replay(store, EmulatorConfig(url=f"http://{client.host}:{client.port}{INGEST_PATH}"))
        assert (report.delivered, report.failed) == (1, 0)
        assert await store.count_quarantined() == 0
        stored = await store.samples(0, 2**62)
        assert sorted(s.identity for s in stored) == sorted(s.identity for s in samples)
        assert {s.labels for s in stored if s.identity == samples[5].identity} == {(("env", "prod"),)}


async def test_a_replay_whose_target_still_fails_keeps_the_records(tmp_path, buggy_decoder):
    store = SQLiteStore(tmp_path / "q.db")
    async with serve_app(receiver_app(store)) as client:
        delivery = Delivery(records=encode_records(make_samples(5), FORMAT))
        assert (await client.post(INGEST_PATH, data=delivery.body, headers=delivery.headers)).status == 200
        url = f"http://{client.host}:{client.port}/nowhere"
        from receiver_tools.emulator import RetryPolicy

        report = await replay(store, EmulatorConfig(url=url, retry=RetryPolicy(duration_s=0)))
        assert (report.delivered, report.failed) == (0, 1)
        assert await store.count_quarantined() == 1


def test_a_memory_store_is_refused_with_one_sentence():
    done = run_cli("quarantine", "list", "--store", "memory://")
    assert done.returncode == 2
    assert done.stderr.startswith("error: a memory:// store lives inside its receiver")
