"""``Store.endpoint_totals`` and ``Store.endpoint_latest`` in SQLite: an endpoint metric's values
of a range reduced per endpoint by SQLite, one row per endpoint handed to Python.

Both go through the entity list (entities.py): for each (endpoint, region) of the service
with a value since the range's start, SQLite seeks that entity's values of the range by the
primary key of ``derived`` (step, metric, service, endpoint, instance, region, time). So a
summary of 2,000 tables reads their values of the range and nothing else, however long the
minute retention. The totals read every value of the range (their count and sum); the latest
reads one value per entity, walking back from the range's end.

The figures must equal ``totals_of`` and ``latest_of`` of the values ``Store.derived`` gives,
to the bit: the total is the one of adding the values one after the other in time order.
- One entity's values come in time order (the key's last column) and the groups follow the
  entity list's key, with no temporary B-tree in the plan (a test holds this), so each
  group's ``sum()`` sees its values in time order.
- SQLite's ``sum()`` adds doubles one after the other up to 3.42; 3.43 made it compensated
  (Kahan-Babuska-Neumaier), which can differ in the last bit. ``summing_function`` finds
  out which this SQLite does, and where it compensates the totals use ``sequential_sum``,
  an aggregate defined here (a Python call per value, so slower).
- An endpoint's merged values can lie in two entities: region '' in the minutes two regions
  reported, the one region in the minutes only it did. Added entity by entity they would
  not be in time order, so such an endpoint's values are read in time order and added in
  Python (``totals_of``'s way); it is rare, and costs one more read per such endpoint. Its
  latest value is that of the entity whose latest value is latest.
"""

from __future__ import annotations

import sqlite3

from receiver.store.base import Totals

SEQUENTIAL_SUM = "sequential_sum"

ENTITY_VALUES = """
FROM entities AS e CROSS JOIN derived AS d
    ON d.step_ms = :step AND d.metric = :metric AND d.service = e.service AND d.endpoint = e.endpoint
    AND d.instance = '' AND d.region = e.region AND d.time_ms {time}
WHERE e.service = :service AND e.endpoint != '' AND e.last_ms >= :start AND {values}
"""
# CROSS JOIN keeps the entity list the outer loop, so SQLite seeks each entity's values.

TOTALS = (
    "SELECT e.endpoint, count(*), {sum}(d.value)"
    + ENTITY_VALUES.replace("{time}", ">= :start AND d.time_ms <= :end")
    + "GROUP BY e.endpoint, e.region, e.layer"
)
# The groups are the entity list's key after the service, so they come in its order and no
# sort reorders an entity's values.

LATEST = "SELECT e.endpoint, d.time_ms, d.value" + ENTITY_VALUES.replace(
    "{time}",
    """= (
        SELECT latest.time_ms FROM derived AS latest
        WHERE latest.step_ms = :step AND latest.metric = :metric AND latest.service = e.service
            AND latest.endpoint = e.endpoint AND latest.instance = '' AND latest.region = e.region
            AND latest.time_ms >= :start AND latest.time_ms <= :end AND {latest}
        ORDER BY latest.time_ms DESC LIMIT 1
    )""",
)
# The subquery walks back from the range's end to the entity's latest value that is read.

VALUES_OF = {True: "d.merged", False: "+e.region = :region"}
"""The values read: the merged ones, or one region's (as ``Store.derived``). The "+" keeps
SQLite from taking the region for a constant of the GROUP BY, which made it sort the groups."""
LATEST_OF = {True: "latest.merged", False: "1"}

IN_TIME_ORDER = """
SELECT value FROM derived
WHERE step_ms = :step AND metric = :metric AND service = :service AND endpoint = :endpoint
    AND instance = '' AND time_ms >= :start AND time_ms <= :end AND {values}
ORDER BY time_ms
"""
ONE_ENDPOINTS_VALUES_OF = {True: "merged", False: "region = :region"}


class SequentialSum:
    """``sum()`` as SQLite 3.42 and older compute it for doubles: added one after the other."""

    def __init__(self) -> None:
        self.total = 0.0

    def step(self, value: float) -> None:
        self.total += value

    def finalize(self) -> float:
        return self.total


def summing_function(conn: sqlite3.Connection) -> str:
    """The name of an aggregate adding doubles one after the other in ``conn``: SQLite's own
    ``sum`` where it does, else ``sequential_sum`` (registered on ``conn`` here)."""
    # Added in order, 1.0 vanishes beside 1e100; a compensated sum keeps it.
    probe = "SELECT sum(v) FROM (SELECT 1e100 AS v UNION ALL SELECT 1.0 UNION ALL SELECT -1e100)"
    if conn.execute(probe).fetchone()[0] == 0.0:
        return "sum"
    conn.create_aggregate(SEQUENTIAL_SUM, 1, SequentialSum)  # type: ignore[arg-type]  # typeshed: ints only
    return SEQUENTIAL_SUM


def _params(
    metric: str, step_ms: int, start_ms: int, end_ms: int, service: str, region: str | None
) -> dict[str, object]:
    params: dict[str, object] = {"step": step_ms, "metric": metric, "service": service}
    params.update(start=start_ms, end=end_ms)
    if region is not None:
        params["region"] = region
    return params


def endpoint_totals(
    conn: sqlite3.Connection,
    sum_function: str,
    metric: str,
    step_ms: int,
    start_ms: int,
    end_ms: int,
    service: str,
    region: str | None,
) -> dict[str, Totals]:
    """Each endpoint's count and total of its values of ``metric`` in the range (module
    docstring); ``sum_function`` as ``summing_function`` answered for ``conn``."""
    merged = region is None
    params = _params(metric, step_ms, start_ms, end_ms, service, region)
    found: dict[str, Totals] = {}
    split: set[str] = set()
    for endpoint, points, total in conn.execute(TOTALS.format(sum=sum_function, values=VALUES_OF[merged]), params):
        if endpoint in found:
            split.add(endpoint)
        else:
            found[endpoint] = Totals(points, float(total))
    query = IN_TIME_ORDER.format(values=ONE_ENDPOINTS_VALUES_OF[merged])
    for endpoint in split:
        values = [value for (value,) in conn.execute(query, {**params, "endpoint": endpoint})]
        found[endpoint] = Totals(len(values), _added(values))
    return found


def endpoint_latest(
    conn: sqlite3.Connection,
    metric: str,
    step_ms: int,
    start_ms: int,
    end_ms: int,
    service: str,
    region: str | None,
) -> dict[str, float]:
    """Each endpoint's value of its latest bucket in the range with a value of ``metric``."""
    merged = region is None
    query = LATEST.format(values=VALUES_OF[merged], latest=LATEST_OF[merged])
    latest: dict[str, tuple[int, float]] = {}
    for endpoint, time_ms, value in conn.execute(query, _params(metric, step_ms, start_ms, end_ms, service, region)):
        # An endpoint whose values lie in several entities: the latest of theirs.
        if endpoint not in latest or time_ms > latest[endpoint][0]:
            latest[endpoint] = (time_ms, float(value))
    return {endpoint: value for endpoint, (_, value) in latest.items()}


def _added(values: list[float]) -> float:
    total = 0.0
    for value in values:
        total += value
    return total
