"""A derived value depends only on the set of samples, not on how Firehose delivered them:
whole, split into requests, shuffled, with requests repeated, every metric, entity and
minute comes out identical."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.rules.rulekit import pack, sample_sets


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
