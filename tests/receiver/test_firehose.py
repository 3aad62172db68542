"""The Firehose envelope: body parsing, limits, common attributes, answers."""

import base64

import orjson
import pybase64
import pytest
from hypothesis import given
from hypothesis import strategies as st

from receiver.firehose import envelope
from receiver.firehose.envelope import EnvelopeError, parse_common_attributes, parse_delivery


def body(records, request_id="req-1", timestamp=1_700_000_000_000) -> bytes:
    return orjson.dumps({"requestId": request_id, "timestamp": timestamp, "records": records})


def record(data: bytes) -> dict:
    return {"data": base64.b64encode(data).decode()}


def test_parses_records_in_order():
    delivery = parse_delivery(body([record(b"one"), record(b"two")]), "req-1")
    assert delivery.request_id == "req-1"
    assert delivery.timestamp_ms == 1_700_000_000_000
    assert delivery.records == [b"one", b"two"]


def test_zero_records_is_a_valid_delivery():
    assert parse_delivery(body([]), "req-1").records == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (orjson.dumps({"requestId": "req-1", "timestamp": 1}), "records is missing or not a list"),
        (orjson.dumps({"requestId": "req-1", "timestamp": 1, "records": {}}), "records is missing or not a list"),
        (orjson.dumps({"timestamp": 1, "records": []}), "requestId is missing"),
        (orjson.dumps({"requestId": "req-1", "records": []}), "timestamp is missing"),
        (
            orjson.dumps({"requestId": "req-1", "timestamp": "soon", "records": []}),
            "timestamp is missing or not a number",
        ),
        (
            orjson.dumps({"requestId": "req-1", "timestamp": True, "records": []}),
            "timestamp is missing or not a number",
        ),
    ],
)
def test_malformed_envelopes_name_the_problem(raw, message):
    with pytest.raises(EnvelopeError, match=message):
        parse_delivery(raw, "req-1")


def test_body_request_id_must_match_the_header():
    with pytest.raises(EnvelopeError, match="does not match the X-Amz-Firehose-Request-Id header"):
        parse_delivery(body([], request_id="other"), "req-1")


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([record(b"ok"), "text"], "record 1: must be an object"),
        ([record(b"ok"), {"data": 5}], "record 1: data is missing or not a string"),
        ([{"other": "x"}], "record 0: data is missing"),
        ([record(b"ok"), record(b"ok"), {"data": "@@@@"}], "record 2: data is not valid base64"),
        ([{"data": "YQ"}], "record 0: data is not valid base64"),  # missing padding
        ([{"data": "ñañ="}], "record 0: data is not valid base64"),
        ([{"data": ""}], "record 0: the record is empty"),
    ],
)
def test_bad_records_name_their_index(records, message):
    with pytest.raises(EnvelopeError, match=message):
        parse_delivery(body(records), "req-1")


def test_more_than_ten_thousand_records_is_refused():
    records = [record(b"x")] * (envelope.MAX_RECORDS + 1)
    with pytest.raises(EnvelopeError, match="10001 records; Firehose sends at most 10000"):
        parse_delivery(body(records), "req-1")


def test_ten_thousand_records_are_accepted():
    records = [record(b"x")] * envelope.MAX_RECORDS
    assert len(parse_delivery(body(records), "req-1").records) == envelope.MAX_RECORDS


def test_a_record_at_the_limit_is_accepted_and_one_byte_more_is_not():
    at_limit = b"\x01" * envelope.MAX_RECORD_BYTES
    assert parse_delivery(body([record(at_limit)]), "req-1").records == [at_limit]
    with pytest.raises(EnvelopeError, match="record 0: larger than Firehose's 1024000 bytes"):
        parse_delivery(body([record(at_limit + b"\x01")]), "req-1")


def test_common_attributes_become_sorted_pairs():
    header = '{"commonAttributes": {"team": "db", "env": "prod"}}'
    assert parse_common_attributes(header) == (("env", "prod"), ("team", "db"))


def test_absent_common_attributes_give_no_labels():
    assert parse_common_attributes(None) == ()


@pytest.mark.parametrize(
    "header",
    ["{not json", '["a"]', '{"other": {}}', '{"commonAttributes": {"n": 1}}', '{"commonAttributes": []}'],
)
def test_malformed_common_attributes_are_refused(header):
    with pytest.raises(EnvelopeError, match="X-Amz-Firehose-Common-Attributes"):
        parse_common_attributes(header)


def test_success_answer_has_id_and_integer_millisecond_timestamp():
    answer = orjson.loads(envelope.response_body("req-1"))
    assert set(answer) == {"requestId", "timestamp"}
    assert answer["requestId"] == "req-1"
    assert isinstance(answer["timestamp"], int) and answer["timestamp"] > 1_600_000_000_000


def test_failure_answer_carries_the_error_message():
    answer = orjson.loads(envelope.response_body("req-1", "bad record"))
    assert answer["errorMessage"] == "bad record"
    assert answer["requestId"] == "req-1"


def test_body_cap_covers_the_largest_firehose_delivery():
    # 64 MiB of record data in the largest records, base64 and the JSON around them.
    full = envelope.MAX_BUFFER_BYTES
    per_record = envelope.MAX_RECORD_BYTES
    records = full // per_record + 1
    largest_body = 4 * -(-full // 3) + records * (len('{"data":""},') + 4) + 100
    assert envelope.MAX_BODY_BYTES >= largest_body


def careful_parse(raw: bytes, request_id: str, monkeypatch: pytest.MonkeyPatch):
    with monkeypatch.context() as patch:
        patch.setattr(envelope, "_scan", lambda *args: None)
        return parse_delivery(raw, request_id)


FIREHOSE_LIKE = [
    body([record(b"one"), record(b"\x00\xff" * 1000), record(b"x")]),
    body([]),
    body([record(b"a")], timestamp=1.5e12),
    b' \n{ "requestId" : "req-1" ,\t"timestamp": 17 , "records" : [ { "data" : "b25l" } , {"data":"dHdv"} ] }\r\n',
    bytearray(body([record(b"in a bytearray")])),
]


@pytest.mark.parametrize("raw", FIREHOSE_LIKE)
def test_the_scanner_reads_firehose_bodies_as_the_json_parser_does(raw, monkeypatch):
    scanned = envelope._scan(raw[:], "req-1")  # a copy: a bytearray body is emptied
    assert scanned is not None
    assert scanned == careful_parse(raw, "req-1", monkeypatch)


def test_a_bytearray_body_is_emptied_as_its_records_are_decoded():
    datas = [bytes([i]) * (3000 + i) for i in range(5)]
    raw = bytearray(body([record(d) for d in datas]))
    assert parse_delivery(raw, "req-1").records == datas
    assert len(raw) < 200  # only the envelope's head is left


@pytest.mark.parametrize(
    "raw",
    [
        body([record(b"one")])[:-1],  # cut short
        body([record(b"one")]) + b"x",  # trailing garbage
        b'{"requestId":"req-1","timestamp":1,"records":[{"data":"b25l"},]}',  # trailing comma
        b'{"timestamp":1,"requestId":"req-1","records":[]}',  # another key order
        b'{"requestId":"req\\u002d1","timestamp":1,"records":[]}',  # an escape
        b'{"requestId":"req-1","timestamp":01,"records":[]}',  # not a JSON number
        b'{"requestId":"req-1","timestamp":1,"records":[{"data":"b2\\/l"}]}',  # an escaped slash
        b'{"requestId":"req-1","timestamp":1,"records":[{"data":"b25"}]}',  # bad base64
        b'{"requestId":"req-1","timestamp":1,"records":[{"data":""}]}',  # empty record
        b'{"requestId":"req-1","timestamp":1,"records":[{"data":"b25l","more":1}]}',
        b'{"requestId":"req-1","timestamp":1,"records":[],"extra":true}',
        b'{"requestId":"req-2","timestamp":1,"records":[]}',  # not the header's id
    ],
)
def test_the_scanner_leaves_everything_else_to_the_json_parser(raw):
    assert envelope._scan(raw, "req-1") is None


def test_an_escaped_record_still_decodes_through_the_json_parser():
    raw = b'{"requestId":"req-1","timestamp":1,"records":[{"data":"b2\\/l"}]}'
    assert parse_delivery(raw, "req-1").records == [base64.b64decode("b2/l")]


def test_non_canonical_base64_gets_binascii_strict_judgement():
    # "QR==" has stray low bits: strict binascii accepts it (as "A"), so the scanner must too.
    assert envelope._read_base64(b"QR==") == (b"A", False)
    assert envelope._read_base64(b"QQ==QQ==") is None


_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


@given(data=st.binary(max_size=64), last=st.sampled_from(_BASE64_ALPHABET), as_view=st.booleans())
def test_a_record_is_canonical_exactly_when_it_encodes_back_whole(data, last, as_view):
    # The canonical encoding, and the same with its last character before padding replaced:
    # stray low bits (still strict base64) or another byte. The scanner checks only the last
    # group; re-encoding the whole record is the definition it must agree with.
    text = pybase64.b64encode(data)
    unpadded = text.rstrip(b"=")
    if unpadded:
        text = unpadded[:-1] + bytes([last]) + text[len(unpadded) :]
    read = envelope._read_base64(memoryview(text) if as_view else text)
    assert read is not None
    decoded, canonical = read
    assert decoded == pybase64.b64decode(text, validate=True)
    assert canonical == (pybase64.b64encode(decoded) == text)
