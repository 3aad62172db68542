"""Reading Firehose backup objects back into records, and `python -m receiver replay`."""

from __future__ import annotations

import asyncio
import base64
import gzip

import orjson
import pytest

from receiver.cli import main
from receiver.formats import SeriesCache, decode_record, encode_records
from receiver.store import open_store_from_url
from receiver_tools.replay import ERROR_OUTPUT, RAW_BACKUP, ReplayError, records_of
from tests.apps import receiver_app, serve_app
from tests.builders import make_samples
from tests.processes import run_cli

FIELDS = lambda s: (s.identity, s.count, s.sum, s.min, s.max)  # noqa: E731


def error_output(records: list[bytes], separator: bytes = b"\n") -> bytes:
    documents = [
        {
            "attemptsMade": 4,
            "arrivalTimestamp": 1,
            "errorCode": "HttpEndpoint.ConnectionFailed",
            "errorMessage": "down",
            "attemptEndingTimestamp": 2,
            "subsequenceNumber": 0,
            "dataId": f"1.{i}",
            "rawData": base64.b64encode(r).decode(),
        }
        for i, r in enumerate(records)
    ]
    return separator.join(orjson.dumps(d) for d in documents)


def samples_of(records: list[bytes]) -> list:
    return [FIELDS(s) for r in records for s in decode_record(r, cache=SeriesCache())]


@pytest.mark.parametrize("separator", [b"\n", b""], ids=["one-per-line", "concatenated"])
def test_error_output_gives_back_its_records(separator):
    records = encode_records(make_samples(40), "opentelemetry0.7", max_record_bytes=512)
    kind, found = records_of(error_output(records, separator))
    assert (kind, found) == (ERROR_OUTPUT, records)


def test_gzipped_objects_are_inflated():
    records = encode_records(make_samples(5), "json")
    kind, found = records_of(gzip.compress(error_output(records)))
    assert (kind, found) == (ERROR_OUTPUT, records)


@pytest.mark.parametrize("fmt", ["opentelemetry0.7", "opentelemetry1.0", "json"])
def test_a_backup_of_source_records_splits_back_into_records(fmt):
    samples = make_samples(60)
    records = encode_records(samples, fmt, max_record_bytes=700)
    kind, found = records_of(b"".join(records))  # "all data" backup: records without delimiters
    assert kind == RAW_BACKUP
    assert samples_of(found) == [FIELDS(s) for s in samples]


def test_an_object_of_something_else_is_refused_naming_it():
    with pytest.raises(ReplayError, match="notes.txt is neither Firehose error output"):
        records_of(b"These are my notes about the outage.\n", "notes.txt")


def test_error_output_with_broken_raw_data_is_refused():
    broken = orjson.dumps({"attemptsMade": 1, "rawData": "***"})
    with pytest.raises(ReplayError, match="document 0 has no valid base64 rawData"):
        records_of(broken, "obj")


def test_error_output_whose_records_do_not_decode_is_sent_as_it_is_for_the_receiver_to_quarantine():
    """Before, such an object was skipped whole: one bad record kept its good ones out."""
    good = encode_records(make_samples(2), "opentelemetry0.7")[0]
    assert records_of(error_output([good, b"\x00\x01hello"]), "obj") == (ERROR_OUTPUT, [good, b"\x00\x01hello"])


async def replay(*args: str) -> tuple[int, str, str]:
    """`python -m receiver replay ARGS` in a thread, while the test's app serves on this loop."""
    done = await asyncio.to_thread(run_cli, "replay", *args)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.slow
async def test_replay_from_a_folder_delivers_every_record_and_is_safe_twice(tmp_path):
    samples = make_samples(50)
    records = encode_records(samples, "json", max_record_bytes=600)
    folder = tmp_path / "backup" / "http-endpoint-failed" / "2024" / "05" / "01" / "10"
    folder.mkdir(parents=True)
    (folder / "stream-1-2024-05-01-10-00-00-a").write_bytes(error_output(records[:3]))
    (folder / "stream-1-2024-05-01-10-05-00-b").write_bytes(gzip.compress(error_output(records[3:])))
    store = open_store_from_url("memory://")
    async with serve_app(receiver_app(store, access_keys=("k",))) as client:
        url = client.base + "/aws/firehose/metrics"
        for _ in range(2):
            code, out, err = await replay(str(tmp_path / "backup"), "--to", url, "--access-key", "k")
            assert code == 0, err
            assert f"replayed {len(records)} records from 2 objects" in out
            assert "[2/2]" in err
            assert await store.count_samples() == len(samples)
        stored = await store.samples(0, 2**62)
    assert sorted(FIELDS(s) for s in stored) == sorted(FIELDS(s) for s in samples)


@pytest.mark.slow
async def test_replay_reports_unreadable_objects_and_exits_non_zero(tmp_path):
    (tmp_path / "junk.txt").write_text("not a backup\n")
    store = open_store_from_url("memory://")
    async with serve_app(receiver_app(store)) as client:
        code, out, err = await replay(str(tmp_path), "--to", client.base + "/aws/firehose/metrics")
    assert code == 1
    assert "1 objects skipped" in out
    assert "junk.txt is neither Firehose error output" in err


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["/no/such/folder", "--to", "http://127.0.0.1:9/aws/firehose/metrics"], "/no/such/folder"),
        (["{tmp}", "--to", "ftp://example.com/x"], "--to"),
        (["{tmp}", "--to", "http://127.0.0.1:9/x", "--retry-seconds", "soon"], "--retry-seconds"),
        (["gs://bucket/x", "--to", "http://127.0.0.1:9/x"], "gs://bucket/x"),
    ],
    ids=["missing-folder", "bad-url", "bad-retry", "not-s3"],
)
def test_bad_arguments_are_one_sentence(tmp_path, capsys, args, named):
    code = main(["replay", *(a.replace("{tmp}", str(tmp_path)) for a in args)])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and named in lines[0], lines
