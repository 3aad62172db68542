"""Reading bodies within the cap and the in-flight budget, gunzipping incrementally."""

import gzip
import zlib

import pytest

from receiver.firehose import body
from receiver.firehose.body import BadEncoding, BodyReader, BodyTooLarge, InflightBudget, OverBudget


async def chunks_of(data: bytes, size: int = 1000):
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def read(data: bytes, encoding=None, limit=10_000, budget=None):
    reader = BodyReader(budget or InflightBudget(1 << 30), limit)
    return await reader.read(chunks_of(data), encoding), reader


async def test_plain_body_is_returned_whole():
    data = bytes(range(256)) * 20
    assert (await read(data))[0] == data


@pytest.mark.parametrize("join_max", [0, 999, 1000, 2500, 1 << 20])
async def test_a_plain_body_is_whole_whether_joined_at_the_end_or_grown_past_the_join_size(join_max, monkeypatch):
    monkeypatch.setattr(body, "JOIN_MAX_BYTES", join_max)
    data = bytes(range(256)) * 20  # 5,120 bytes in chunks of 1,000: the switch falls mid-body
    whole, reader = await read(data)
    assert whole == data
    assert isinstance(whole, bytearray)  # the envelope empties it as it takes the records
    assert reader.held == len(data)


async def test_gzip_body_is_inflated():
    data = b"metrics " * 1000
    assert (await read(gzip.compress(data), "gzip"))[0] == data


async def test_concatenated_gzip_members_are_one_body():
    assert (await read(gzip.compress(b"first ") + gzip.compress(b"second"), "gzip"))[0] == b"first second"


async def test_plain_body_over_the_cap_is_refused():
    with pytest.raises(BodyTooLarge, match="lower the delivery stream's buffering size"):
        await read(b"x" * 10_001)


async def test_body_exactly_at_the_cap_is_accepted():
    assert len((await read(b"x" * 10_000))[0]) == 10_000


async def test_gzip_inflating_past_the_cap_stops_there():
    bomb = gzip.compress(b"\0" * 5_000_000)  # a few KB
    budget = InflightBudget(1 << 30)
    with pytest.raises(BodyTooLarge):
        await read(bomb, "gzip", budget=budget)
    # Nothing near the bomb's size was ever held.
    assert budget.in_use <= 10_001 + len(bomb)


async def test_gzip_header_then_garbage_is_bad_encoding():
    with pytest.raises(BadEncoding, match="not valid gzip"):
        await read(b"\x1f\x8b\x08\x00" + b"garbage" * 10, "gzip")


async def test_truncated_gzip_is_bad_encoding():
    whole = gzip.compress(b"metrics " * 1000)
    with pytest.raises(BadEncoding, match="truncated"):
        await read(whole[: len(whole) // 2], "gzip")


async def test_data_after_the_gzip_stream_is_bad_encoding():
    with pytest.raises(BadEncoding, match="not valid gzip"):
        await read(gzip.compress(b"ok") + b"trailing junk", "gzip")


async def test_unknown_content_encoding_is_refused():
    with pytest.raises(BadEncoding, match="'br' is not supported"):
        await read(b"x", "br")


async def test_deflate_without_gzip_header_is_refused():
    with pytest.raises(BadEncoding):
        await read(zlib.compress(b"x" * 100), "gzip")


def test_budget_admits_a_lone_request_larger_than_itself():
    budget = InflightBudget(10)
    budget.reserve(0, 100)
    assert budget.in_use == 100


def test_budget_refuses_growth_past_the_limit_while_others_hold_bytes():
    budget = InflightBudget(100)
    budget.reserve(0, 60)  # another request
    with pytest.raises(OverBudget):
        budget.reserve(0, 50)
    budget.reserve(0, 40)
    assert budget.in_use == 100


def test_released_bytes_free_the_budget():
    budget = InflightBudget(100)
    budget.reserve(0, 60)
    budget.release(60)
    budget.reserve(0, 100)
    assert budget.in_use == 100


async def test_reader_accounts_what_it_holds():
    budget = InflightBudget(1 << 20)
    _, reader = await read(b"y" * 5000, budget=budget)
    assert reader.held == 5000 == budget.in_use
    budget.release(reader.held)
    assert budget.in_use == 0
