"""Topic filters and replay targets: which entries a subscription delivers (pure)."""

from __future__ import annotations

import orjson
import pytest

from events.core.topics import check_patterns, keeper, matcher, topic_of


def entry(topic: str | None = None, replay_for: str | None = None) -> dict[bytes, bytes]:
    metadata = {"eid": "x"} if topic is None else {"eid": "x", "topic": topic}
    fields = {b"e": orjson.dumps({"metadata": metadata, "n": 1})}
    if replay_for is not None:
        fields[b"r"] = replay_for.encode()
    return fields


def test_it_matches_exact_names_and_globs():
    matches = matcher(["orders.created", "payments.*"])
    assert matches("orders.created")
    assert matches("payments.settled.eu")  # '*' spans dots
    assert not matches("orders.created.v2")
    assert not matches("orders")
    assert not matches(None)


def test_without_patterns_every_event_is_delivered():
    keep = keeper("sub-1", [])
    assert keep(entry())
    assert keep(entry("anything"))


def test_a_filter_skips_events_without_a_matching_topic():
    keep = keeper("sub-1", ["orders.*"])
    assert keep(entry("orders.created"))
    assert not keep(entry("payments.settled"))
    assert not keep(entry())  # no topic: not matched


def test_a_replayed_dead_letter_goes_only_to_its_subscription():
    assert keeper("sub-1", [])(entry(replay_for="sub-1"))
    assert not keeper("sub-2", [])(entry(replay_for="sub-1"))
    assert not keeper("sub-1", ["orders.*"])(entry("payments.x", replay_for="sub-1"))


def test_topic_of_ignores_what_is_not_a_string():
    assert topic_of(orjson.dumps({"metadata": {"topic": 3}})) is None
    assert topic_of(b"not json") is None
    assert topic_of(orjson.dumps(["a"])) is None


def test_patterns_are_checked_and_sorted_once():
    assert check_patterns(["b", "a", "b"]) == ["a", "b"]
    for bad in ("a", [""], [1], ["x"] * 51):
        with pytest.raises(ValueError, match="topics"):
            check_patterns(bad if bad != ["x"] * 51 else [f"x{i}" for i in range(51)])
