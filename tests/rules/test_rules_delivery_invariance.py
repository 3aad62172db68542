"""A derived value depends only on the set of samples, not on how Firehose delivered them:
whole, split into requests, shuffled, with requests repeated, every metric, entity and
minute comes out identical."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.rules.rulekit import pack, sample

# (CloudWatch metric, operations it comes with or None, whether indexes have it)
METRICS = [
    ("ConsumedReadCapacityUnits", None, True),
    ("ConsumedWriteCapacityUnits", None, True),
    ("ProvisionedReadCapacityUnits", None, True),
    ("ProvisionedWriteCapacityUnits", None, True),
    ("SuccessfulRequestLatency", ("GetItem", "BatchGetItem", "PutItem", "Query", "Scan"), False),
    ("ReturnedItemCount", ("Query", "Scan"), False),
    ("ThrottledRequests", ("GetItem", "PutItem", "UpdateItem"), False),
    ("SystemErrors", ("Query", "TransactWriteItems"), False),
    ("ReadThrottleEvents", None, True),
    ("TimeToLiveDeletedItemCount", None, False),
    ("UserErrors", None, False),
    ("AccountMaxReads", None, False),
]


@st.composite
def sample_sets(draw):
    """A set of samples with distinct identities, spread over tables, indexes and minutes."""
    found = {}
    for _ in range(draw(st.integers(1, 25))):
        metric, ops, indexed = draw(st.sampled_from(METRICS))
        dims = {}
        if metric not in ("UserErrors", "AccountMaxReads"):
            dims["TableName"] = draw(st.sampled_from(["A", "B"]))
            if indexed and draw(st.booleans()):
                dims["GlobalSecondaryIndexName"] = "G"
            if ops:
                dims["Operation"] = draw(st.sampled_from(ops))
        count = float(draw(st.integers(1, 500)))
        total = draw(st.floats(0, 1e6, allow_nan=False, allow_infinity=False))
        stats = (("p99", draw(st.floats(0, 1e4))),) if draw(st.booleans()) else ()
        s = sample(
            metric,
            total,
            count,
            minute=draw(st.integers(0, 2)),
            stats=stats,
            region=draw(st.sampled_from(["us-east-1", "eu-west-1"])),
            **dims,
        )
        found[s.identity] = s
    return list(found.values())


@st.composite
def deliveries(draw, samples):
    """``samples`` split into requests, the requests shuffled and some sent again."""
    order = draw(st.permutations(samples))
    cuts = sorted(draw(st.lists(st.integers(0, len(order)), max_size=6)))
    bounds = [0, *cuts, len(order)]
    requests = [order[a:b] for a, b in pairwise(bounds) if b > a]
    repeated = draw(st.lists(st.sampled_from(requests), max_size=4)) if requests else []
    return draw(st.permutations(requests + repeated))


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_values_do_not_depend_on_how_the_samples_were_delivered(data):
    samples = data.draw(sample_sets())
    requests = data.draw(deliveries(samples))
    whole = pack().evaluate(samples)

    # What the store ends up holding: each delivery upserted by identity, in arrival order.
    stored = {}
    for request in requests:
        for s in request:
            stored[s.identity] = s
    assert pack().evaluate(stored.values()) == whole
    # And the raw stream of deliveries, repeats included, straight into the rules.
    assert pack().evaluate([s for request in requests for s in request]) == whole
    assert whole  # the strategy always yields something the pack measures
