"""The one backoff: growth from the first wait, the cap, and each jitter range the callers use."""

from __future__ import annotations

import math
import random

import pytest

from receiver.backoff import FULL_JITTER, Backoff


def test_the_first_failure_waits_the_initial_delay():
    assert Backoff(0.5, 60.0).delay_s(1) == 0.5


def test_delays_grow_by_the_multiplier():
    assert [Backoff(1.0, multiplier=3.0).delay_s(n) for n in range(1, 5)] == [1.0, 3.0, 9.0, 27.0]


def test_delays_double_by_default_and_stop_at_the_cap():
    assert [Backoff(1.0, 10.0).delay_s(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_failures_past_any_float_stay_at_the_cap_without_overflowing():
    assert Backoff(1.0, 60.0).delay_s(5000) == 60.0
    assert Backoff(1.0).delay_s(5000) == math.inf
    assert Backoff(0.0, 60.0).delay_s(5000) == 0.0


def test_without_jitter_no_number_is_drawn():
    rng = random.Random(1)
    before = rng.getstate()
    Backoff(1.0, 10.0).delay_s(3, rng)
    assert rng.getstate() == before


def test_one_uniform_draw_scales_the_capped_ceiling():
    assert Backoff(2.0, 5.0, jitter=(0.5, 1.0)).delay_s(3, random.Random(9)) == 5.0 * random.Random(9).uniform(0.5, 1.0)


def test_full_jitter_spreads_over_the_whole_window_below_the_ceiling():
    rng = random.Random(3)
    waits = [Backoff(0.1, 1.0, jitter=FULL_JITTER).delay_s(3, rng) for _ in range(200)]  # ceiling 0.4
    assert all(0.0 <= wait < 0.4 for wait in waits)
    assert min(waits) < 0.04 and max(waits) > 0.36


def test_a_fractional_jitter_stays_within_its_range_on_both_sides():
    rng = random.Random(4)
    waits = [Backoff(1.0, 60.0, jitter=(0.8, 1.2)).delay_s(4, rng) for _ in range(200)]  # ceiling 8
    assert all(6.4 <= wait <= 9.6 for wait in waits)
    assert min(waits) < 7.0 and max(waits) > 9.0


def test_the_jitter_applies_after_the_cap():
    rng = random.Random(5)
    waits = [Backoff(1.0, 10.0, jitter=(0.8, 1.2)).delay_s(20, rng) for _ in range(50)]
    assert all(8.0 <= wait <= 12.0 for wait in waits)
    assert max(waits) > 10.0


def test_the_same_seed_gives_the_same_delays():
    backoff = Backoff(1.0, 60.0, jitter=FULL_JITTER)
    first, second = random.Random(42), random.Random(42)
    assert [backoff.delay_s(n, first) for n in range(1, 8)] == [backoff.delay_s(n, second) for n in range(1, 8)]


def test_without_a_generator_the_random_modules_shared_one_draws():
    backoff = Backoff(1.0, 60.0, jitter=(0.8, 1.2))
    saved = random.getstate()
    try:
        random.seed(11)
        first = [backoff.delay_s(n) for n in range(1, 5)]
        random.seed(11)
        assert [backoff.delay_s(n) for n in range(1, 5)] == first
    finally:
        random.setstate(saved)


def test_failures_count_from_one():
    with pytest.raises(ValueError, match="failures counts from 1"):
        Backoff(1.0).delay_s(0)


@pytest.mark.parametrize(
    "options",
    [
        {"initial_s": -1.0},
        {"initial_s": 1.0, "max_s": -1.0},
        {"initial_s": 1.0, "multiplier": 0.5},
        {"initial_s": 1.0, "jitter": (1.2, 0.8)},
        {"initial_s": 1.0, "jitter": (-0.1, 1.0)},
    ],
    ids=["negative initial", "negative cap", "shrinking", "reversed jitter", "negative jitter"],
)
def test_a_backoff_that_cannot_be_refuses_construction(options):
    with pytest.raises(ValueError):
        Backoff(**options)
