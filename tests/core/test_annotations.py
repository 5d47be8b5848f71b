"""Nakadi's dead-letter annotations of a subscription: what they set, and what is refused
(pure)."""

from __future__ import annotations

import pytest

from events.core.annotations import (
    MAX_EVENT_SEND_COUNT,
    UNPROCESSABLE_EVENT_POLICY,
    delivery_settings,
)
from events.core.problems import Problem


def test_the_send_count_sets_max_deliveries_and_the_policy_its_fate():
    annotations = {MAX_EVENT_SEND_COUNT: "3", UNPROCESSABLE_EVENT_POLICY: "SKIP_EVENT"}
    assert delivery_settings(annotations, 1000) == {
        "max_deliveries": 3,
        "unprocessable_event_policy": "skip",
    }
    dead = {UNPROCESSABLE_EVENT_POLICY: "DEAD_LETTER_QUEUE"}
    assert delivery_settings(dead, 1000) == {"unprocessable_event_policy": "dead_letter"}


def test_other_annotations_set_nothing():
    assert delivery_settings({"example.org/team": "billing"}, 1000) == {}


@pytest.mark.parametrize("count", ["0", "-1", "three", "2.5", " 3", "1001", "³", ""])
def test_a_send_count_that_is_no_integer_in_range_is_refused(count):
    with pytest.raises(Problem) as refused:
        delivery_settings({MAX_EVENT_SEND_COUNT: count}, 1000)
    assert refused.value.status == 422
    assert refused.value.detail == (
        f'Annotation "{MAX_EVENT_SEND_COUNT}" must be an integer from 1 to 1000, as a '
        f'string; got "{count}".'
    )


@pytest.mark.parametrize("policy", ["skip_event", "SKIP", "DEAD_LETTER", ""])
def test_a_policy_nakadi_does_not_know_is_refused(policy):
    with pytest.raises(Problem) as refused:
        delivery_settings({UNPROCESSABLE_EVENT_POLICY: policy}, 1000)
    assert refused.value.status == 422
    assert "must be one of: DEAD_LETTER_QUEUE, SKIP_EVENT" in refused.value.detail
