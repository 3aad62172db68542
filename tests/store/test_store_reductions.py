"""``Store.endpoint_totals`` and ``Store.endpoint_latest`` in every store: exactly ``totals_of``
and ``latest_of`` what ``Store.derived`` answers for the same range, merged and per region, to
the bit, over gaps, partial ranges, hours, and endpoints whose merged values lie in several
regions."""

from __future__ import annotations

import dataclasses

import pytest

from receiver.model import HOUR_MS, MINUTE_MS, DerivedValue
from receiver.store.base import Totals, latest_of, totals_of
from tests.builders import T0

SERVICE = "aws-dynamodb::123456789012"
OTHER = "aws-dynamodb::210987654321"
METRIC = "aws_dynamodb_endpoint_x"
WEST, EAST = "eu-west-1", "us-east-1"


def value(endpoint, minute, v, region="", merged=True, metric=METRIC, service=SERVICE, step_ms=MINUTE_MS):
    scope = "endpoint" if endpoint else "service"
    time_ms = T0 - T0 % step_ms + minute * step_ms
    return DerivedValue(metric, scope, service, endpoint, "AWS_DYNAMODB", time_ms, v, None, region, merged)


def bucket_values(minute: int) -> list[DerivedValue]:
    """Minute ``minute``'s values: "Local" in one region with a gap, "Global" in two regions
    from minute 2 on (before: west only), "Odd" whose values add differently out of order."""
    values = [value(None, minute, 100.0 + minute)]  # the account's own: never an endpoint's
    if minute != 3:
        values.append(value("Local", minute, 0.1 * (minute + 1), WEST))
    if minute < 2:
        values.append(value("Global", minute, 0.7 * minute, WEST))
    else:
        values += [
            value("Global", minute, 0.7 * minute + 0.2),
            value("Global", minute, 0.7 * minute, WEST, merged=False),
            value("Global", minute, 0.2, EAST, merged=False),
        ]
    # Added in time order 1e16 + 1.0 rounds back to 1e16, and the total is 0.0; added region by
    # region (the '' minutes first) it would be 1.0.
    odd = {0: value("Odd", 0, 1e16), 1: value("Odd", 1, 1.0, EAST), 2: value("Odd", 2, -1e16)}
    if minute in odd:
        values.append(odd[minute])
        if not odd[minute].region:
            values += [
                dataclasses.replace(odd[minute], region=WEST, merged=False),
                dataclasses.replace(odd[minute], region=EAST, merged=False, value=0.0),
            ]
    values.append(value("Local", minute, 9.0, service=OTHER))
    values.append(value("Local", minute, 5.0, metric="aws_dynamodb_endpoint_y"))
    return values


@pytest.fixture
async def filled(store):
    for minute in range(6):
        values = bucket_values(minute)
        await store.put_derived(MINUTE_MS, values[0].time_ms, 1, values)
    hour = [value("Local", 0, 3.5, WEST, step_ms=HOUR_MS), value("Global", 0, 1.25, step_ms=HOUR_MS)]
    await store.put_derived(HOUR_MS, hour[0].time_ms, 1, hour)
    return store


async def both(store, step_ms, start_ms, end_ms, region=None, service=SERVICE):
    """({endpoint: (totals, latest)} of the store's reductions, and of the derived values) for
    the same arguments."""
    args = (METRIC, step_ms, start_ms, end_ms)
    totals = await store.endpoint_totals(*args, service=service, region=region)
    latest = await store.endpoint_latest(*args, service=service, region=region)
    values = await store.derived(*args, service=service, region=region)
    assert set(totals) == set(latest)
    expected_totals, expected_latest = totals_of(values), latest_of(values)
    return (
        {endpoint: (totals[endpoint], latest[endpoint]) for endpoint in totals},
        {endpoint: (expected_totals[endpoint], expected_latest[endpoint]) for endpoint in expected_totals},
    )


def minute(n: int) -> int:
    return T0 + n * MINUTE_MS


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, 5), (1, 4), (3, 3), (2, 9), (-10, 0), (6, 9)],
    ids=["all", "inner", "the-gap", "to-past-the-end", "to-the-first", "after"],
)
@pytest.mark.parametrize("region", [None, WEST, EAST])
async def test_reductions_equal_those_of_the_derived_values(filled, start, end, region) -> None:
    reduced, expected = await both(filled, MINUTE_MS, minute(start), minute(end), region)
    assert reduced == expected
    assert {(type(totals.total), type(last)) for totals, last in reduced.values()} <= {(float, float)}


async def test_the_figures_worked_out_by_hand(filled) -> None:
    reduced, _ = await both(filled, MINUTE_MS, minute(0), minute(5))
    local = [0.1 * (m + 1) for m in (0, 1, 2, 4, 5)]
    assert reduced["Local"] == (Totals(5, pytest.approx(sum(local))), local[-1])
    assert reduced["Global"] == (Totals(6, pytest.approx(0.7 * 15 + 0.8)), 0.7 * 5 + 0.2)
    # In time order: ((0.0 + 1e16) + 1.0) + -1e16.
    assert reduced["Odd"] == (Totals(3, 0.0), -1e16)
    assert set(reduced) == {"Local", "Global", "Odd"}
    west, _ = await both(filled, MINUTE_MS, minute(0), minute(5), WEST)
    assert west["Global"] == (Totals(6, pytest.approx(0.7 * 15)), 0.7 * 5)
    assert west["Odd"] == (Totals(2, 0.0), -1e16)
    east, _ = await both(filled, MINUTE_MS, minute(0), minute(5), EAST)
    assert east["Global"] == (Totals(4, pytest.approx(0.8)), 0.2)
    assert set(east) == {"Global", "Odd"}
    # The latest of an endpoint whose merged values lie in two regions is the latest minute's.
    early, _ = await both(filled, MINUTE_MS, minute(0), minute(1))
    assert early["Odd"] == (Totals(2, 1e16 + 1.0), 1.0)


async def test_hours_and_other_services(filled) -> None:
    hour = T0 - T0 % HOUR_MS
    reduced, expected = await both(filled, HOUR_MS, hour, hour)
    assert reduced == expected == {"Local": (Totals(1, 3.5), 3.5), "Global": (Totals(1, 1.25), 1.25)}
    assert await both(filled, HOUR_MS, hour + HOUR_MS, hour + 2 * HOUR_MS) == ({}, {})
    other, expected = await both(filled, MINUTE_MS, minute(0), minute(5), service=OTHER)
    assert other == expected == {"Local": (Totals(6, 54.0), 9.0)}


async def test_recomputed_buckets_are_reduced_as_they_are_now(filled) -> None:
    # Minute 1 again, without Local and with another Global value: the reductions follow.
    values = [value("Global", 1, 40.0, WEST)]
    assert await filled.put_derived(MINUTE_MS, minute(1), 2, values)
    reduced, expected = await both(filled, MINUTE_MS, minute(0), minute(5))
    assert reduced == expected
    assert reduced["Local"][0].points == 4
    assert "Odd" in reduced and reduced["Odd"][0].points == 2
