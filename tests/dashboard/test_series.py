"""Rates from sampled counters (events/dashboard/series.py): pure."""

from __future__ import annotations

import pytest

from events.dashboard.series import rates

pytestmark = pytest.mark.no_redis


def test_a_rate_is_the_count_s_rise_per_second_at_the_later_sample():
    assert rates([(1_000, 10), (3_000, 20), (3_500, 20)]) == [(3.0, 5.0), (3.5, 0.0)]


def test_a_count_that_fell_or_samples_at_one_moment_give_no_negative_or_infinite_rate():
    assert rates([(1_000, 10), (2_000, 4), (2_000, 9)]) == [(2.0, 0.0)]
    assert rates([]) == rates([(1_000, 1)]) == []
