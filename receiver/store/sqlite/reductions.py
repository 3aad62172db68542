"""``Store.endpoint_reductions`` in SQLite: an endpoint metric's values of a range reduced per
endpoint by SQLite, one row per endpoint handed to Python.

For each (endpoint, region) of the service in the entity list (entities.py) with a value
since the range's start, SQLite seeks that entity's values of the range by the primary key
of ``derived`` (step, metric, service, endpoint, instance, region, time) and reduces them:
their count, their sum, and the value at the latest time (SQLite gives a bare column the
row of the one ``max()``). So a summary of 2,000 tables reads their values of the range and
nothing else, however long the minute retention.

The figures must equal ``reductions_of`` the same values as ``Store.derived`` gives them,
to the bit: the sum is the one of adding the values one after the other in time order.
- One entity's values come in time order (the key's last column) and the groups follow the
  entity list's key, with no temporary B-tree in the plan (a test holds this), so each
  group's ``sum()`` sees its values in time order.
- SQLite's ``sum()`` adds doubles one after the other up to 3.42; 3.43 made it compensated
  (Kahan-Babuska-Neumaier), which can differ in the last bit. ``summing_function`` finds
  out which this SQLite does, and where it compensates the reductions use
  ``sequential_sum``, an aggregate defined here (a Python call per value, so slower).
- An endpoint's merged values can lie in two entities: region '' in the minutes two regions
  reported, the one region in the minutes only it did. Added entity by entity they would
  not be in time order, so such an endpoint's values are read in time order and reduced in
  Python (``reductions_of``'s way); it is rare, and costs one more read per such endpoint.
"""

from __future__ import annotations

import sqlite3

from receiver.store.base import Reduction

SEQUENTIAL_SUM = "sequential_sum"

REDUCE = """
SELECT e.endpoint, count(*), {sum}(d.value), max(d.time_ms), d.value
FROM entities AS e CROSS JOIN derived AS d
    ON d.step_ms = :step AND d.metric = :metric AND d.service = e.service AND d.endpoint = e.endpoint
    AND d.instance = '' AND d.region = e.region AND d.time_ms >= :start AND d.time_ms <= :end
WHERE e.service = :service AND e.endpoint != '' AND e.last_ms >= :start AND {values}
GROUP BY e.endpoint, e.region, e.layer
"""
# CROSS JOIN keeps the entity list the outer loop. The groups are the entity list's key
# after the service, so they come in its order and no sort reorders an entity's values.

VALUES_OF = {True: "d.merged", False: "+e.region = :region"}
"""The values read: the merged ones, or one region's (as ``Store.derived``). The "+" keeps
SQLite from taking the region for a constant of the GROUP BY, which made it sort the groups."""

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


def endpoint_reductions(
    conn: sqlite3.Connection,
    sum_function: str,
    metric: str,
    step_ms: int,
    start_ms: int,
    end_ms: int,
    service: str,
    region: str | None,
) -> dict[str, Reduction]:
    """Each endpoint's values of ``metric`` in the range reduced (module docstring);
    ``sum_function`` as ``summing_function`` answered for ``conn``."""
    merged = region is None
    params = {"step": step_ms, "metric": metric, "service": service, "start": start_ms, "end": end_ms}
    if not merged:
        params["region"] = region
    found: dict[str, Reduction] = {}
    split: set[str] = set()
    rows = conn.execute(REDUCE.format(sum=sum_function, values=VALUES_OF[merged]), params)
    for endpoint, count, total, _latest_ms, last in rows:
        if endpoint in found:
            split.add(endpoint)
            continue
        found[endpoint] = Reduction(count, float(total), float(last))
    query = IN_TIME_ORDER.format(values=ONE_ENDPOINTS_VALUES_OF[merged])
    for endpoint in split:
        values = [value for (value,) in conn.execute(query, {**params, "endpoint": endpoint})]
        found[endpoint] = Reduction(len(values), _added(values), values[-1])
    return found


def _added(values: list[float]) -> float:
    total = 0.0
    for value in values:
        total += value
    return total
