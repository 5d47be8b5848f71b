"""Fair, sticky partition assignment, as plain functions."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from events.core.rebalance import TooManySessions, automatic_pool, direct_clash, fair_share

PARTITIONS = [("order.created", p) for p in range(8)] + [("order.paid", 0)]


def counts(assignment):
    return sorted(Counter(assignment.values()).values())


def test_one_session_takes_everything():
    assert set(fair_share(PARTITIONS, ["a"], {}).values()) == {"a"}


def test_counts_differ_by_at_most_one():
    for sessions in (["a", "b"], ["a", "b", "c"], list("abcdefghi")):
        assignment = fair_share(PARTITIONS, sessions, {})
        assert set(assignment) == set(PARTITIONS)
        assert max(counts(assignment)) - min(counts(assignment)) <= 1


def test_a_joining_session_takes_only_its_share_from_the_others():
    before = fair_share(PARTITIONS, ["a", "b"], {})
    after = fair_share(PARTITIONS, ["a", "b", "c"], before)
    moved = [p for p in PARTITIONS if before[p] != after[p]]
    assert len(moved) == 3  # 9 partitions: c gets 3, nothing else moves
    assert all(after[p] == "c" for p in moved)


def test_a_leaving_session_hands_over_only_what_it_had():
    before = fair_share(PARTITIONS, ["a", "b", "c"], {})
    after = fair_share(PARTITIONS, ["a", "b"], before)
    assert all(after[p] == before[p] for p in PARTITIONS if before[p] != "c")


def test_every_session_computes_the_same_assignment():
    owners = {p: random.choice("abz") for p in PARTITIONS}  # z has gone
    results = {
        tuple(sorted(fair_share(PARTITIONS, order, owners).items()))
        for order in (["a", "b", "c"], ["c", "b", "a"], ["b", "a", "c"])
    }
    assert len(results) == 1


def test_more_sessions_than_partitions_is_refused():
    with pytest.raises(TooManySessions):
        fair_share(PARTITIONS[:2], ["a", "b", "c"], {})


def test_no_session_owns_nothing():
    assert fair_share(PARTITIONS, [], {}) == {}


def test_a_direct_claim_clashes_only_with_another_live_session_s():
    claims = {"a": {("t", 0), ("t", 1)}, "dead": {("t", 2)}, "me": {("t", 3)}}
    live = ["a", "me"]
    assert direct_clash(claims, live, "me", [("t", 2), ("t", 1), ("t", 0)]) == ("t", 0)
    assert direct_clash(claims, live, "me", [("t", 2), ("t", 3)]) is None  # dead's, and mine


def test_partitions_streamed_directly_leave_the_automatic_pool_with_their_sessions():
    partitions = [("t", p) for p in range(4)]
    claims = {"direct": {("t", 1)}, "dead": {("t", 2)}}
    pool, sessions = automatic_pool(partitions, claims, ["auto", "direct"])
    assert pool == [("t", 0), ("t", 2), ("t", 3)]
    assert sessions == ["auto"]
