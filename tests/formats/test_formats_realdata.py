"""Every payload of the real corpus (``../shared/realdata``) decodes to what its source
project expects, with the compiled decoder and the reference (the careful walk), with the format
given and detected.

Skipped when the folder is absent; CI has it. The cases and their expectations are built in
realdata.py, which the HTTP-level tests share.
"""

from __future__ import annotations

import pytest

from receiver.formats import DecodeError, decode_record

from .helpers import CACHE
from .realdata import MISMATCHED_METRIC, OTEL07, OTEL10, CorpusCase, available, corpus_cases, corpus_files, covered

pytestmark = pytest.mark.skipif(not available(), reason="../shared/realdata is not here")

CASES = list(corpus_cases())


def test_every_corpus_file_has_a_case() -> None:
    assert corpus_files() and set(corpus_files()) == covered(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
@pytest.mark.parametrize("detect", [False, True], ids=["format given", "format detected"])
def test_each_record_decodes_as_its_source_project_expects(case: CorpusCase, detect: bool, decoder: str) -> None:
    assert len(case.records) == len(case.expected)
    for index, (data, expected) in enumerate(zip(case.records, case.expected)):
        fmt = None if detect else case.fmt
        if expected.reason is not None:
            with pytest.raises(DecodeError) as info:
                decode_record(data, fmt, cache=CACHE)
            assert info.value.reason == expected.reason, f"record {index}: {info.value}"
        else:
            assert decode_record(data, fmt, cache=CACHE) == list(expected.samples), f"record {index}"


def test_the_telegraf_bodies_hold_every_line() -> None:
    counts = {case.source: len(case.samples) for case in CASES if case.source.startswith("telegraf_")}
    assert counts == {"telegraf_record.json": 1, "telegraf_records.json": 1160, "telegraf_records.gz": 1160}


@pytest.mark.parametrize("fmt", [OTEL07, OTEL10])
def test_skywalkings_hand_edited_dynamodb_metric_is_refused_and_the_others_kept(fmt: str, decoder: str) -> None:
    [whole] = [
        c
        for c in CASES
        if c.source == "skywalking_e2e_dynamodb_data-1.json" and c.fmt == fmt and "one message" in c.name
    ]
    with pytest.raises(DecodeError) as info:
        decode_record(whole.records[0], fmt, cache=CACHE)
    assert info.value.reason == "metric_name_mismatch"
    assert MISMATCHED_METRIC in str(info.value) and "ProvisionedReadCapacityUnits" in str(info.value)

    [split] = [c for c in CASES if c.source == whole.source and c.fmt == fmt and "per record" in c.name]
    kept = refused = 0
    for data, expected in zip(split.records, split.expected):
        try:
            samples = decode_record(data, fmt, cache=CACHE)
        except DecodeError as exc:
            assert exc.reason == "metric_name_mismatch"
            refused += 1
        else:
            assert samples == list(expected.samples)
            kept += len(samples)
    assert (kept, refused) == (15, 1)


def test_flat_1x_attributes_are_labels_and_0_7_labels_dimensions() -> None:
    # SkyWalking's e2e data sent as 1.0 as it is: TableName is not in CloudWatch's Dimensions
    # list, so it is kept as a label; inverted to 0.7 it is a dimension, as AWS sends it.
    s3 = {c.fmt: c for c in CASES if c.source == "skywalking_e2e_s3_data-1.json"}
    as07 = decode_record(s3[OTEL07].records[0], OTEL07, cache=CACHE)[0]
    as10 = decode_record(s3[OTEL10].records[0], OTEL10, cache=CACHE)[0]
    assert as07.series.dimensions == (("BucketName", "skywalking"), ("FilterId", "test"))
    assert as10.series.dimensions == ()
    assert ("BucketName", "skywalking") in as10.labels and ("FilterId", "test") in as10.labels
