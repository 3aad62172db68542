"""``GET /api/v1/pipeline`` and the price it reports (``--metric-update-price``)."""

from __future__ import annotations

import argparse
import time

import pytest

from receiver.config import ConfigError, add_serve_arguments, serve_config
from receiver.keys import COMPLETENESS
from receiver.model import MINUTE_MS
from tests.apps import receiver_app, serve_app
from tests.builders import make_sample


def price(*argv: str, env: dict[str, str] | None = None) -> float:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return serve_config(parser.parse_args(["--access-key", "k", *argv]), env or {}).metric_update_price


def test_the_price_is_us_east_by_default_and_set_by_option_or_environment() -> None:
    assert price() == 0.003
    assert price(env={"RECEIVER_METRIC_UPDATE_PRICE": "0.0036"}) == 0.0036
    assert price("--metric-update-price", "0", env={"RECEIVER_METRIC_UPDATE_PRICE": "0.0036"}) == 0.0


@pytest.mark.parametrize("text", ["-0.001", "cheap", "2"])
def test_a_bad_price_is_one_sentence(text: str) -> None:
    with pytest.raises(ConfigError, match=r"--metric-update-price \(RECEIVER_METRIC_UPDATE_PRICE\) .* from 0 to 1"):
        price("--metric-update-price", text)


async def test_minutes_the_replica_derived_are_listed_with_their_accounts_and_regions() -> None:
    app = receiver_app(metric_update_price=0.0036)
    async with serve_app(app) as client:
        completeness = app[COMPLETENESS]
        now_ms = int(time.time() * 1000)
        at = now_ms - now_ms % MINUTE_MS - 10 * MINUTE_MS  # settled, and recent enough to be kept
        completeness.observe(at, [make_sample("A", start_ms=at), make_sample("A", start_ms=at, region="eu-west-1")])
        completeness.observe(at + MINUTE_MS, [])
        window = {"start": str(at // 1000), "end": str((at + MINUTE_MS) // 1000)}
        answer = await (await client.get("/api/v1/pipeline", params=window)).json()
    assert answer["metric_update_price_per_1000"] == 0.0036 and answer["settle_seconds"] == 300.0
    # Complete by settling; with no history before them, nothing was expected; a minute with
    # no series has no entry.
    listed = [(m["minute"], m["account"], m["region"], m["expected"], m["series"], m["by"]) for m in answer["minutes"]]
    assert listed == [
        (at // 1000, "123456789012", "eu-west-1", 0, 1, "settled"),
        (at // 1000, "123456789012", "us-east-1", 0, 1, "settled"),
    ]


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"start": "soon"}, "start must be whole epoch seconds, not 'soon'"),
        ({"start": "200", "end": "100"}, "start must not be after end"),
        ({"start": "0", "end": "90000"}, "the range from start to end is longer than a day; give a shorter one"),
    ],
)
async def test_a_bad_range_is_a_bad_query(params: dict[str, str], error: str) -> None:
    async with serve_app(receiver_app()) as client:
        response = await client.get("/api/v1/pipeline", params=params)
        assert (response.status, await response.json()) == (400, {"error": error})
