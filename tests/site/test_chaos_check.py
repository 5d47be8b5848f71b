"""The chaos suite's verdict (bench/chaos_check.py) finds what it must: a lost event, a key
out of order, duplicates and the fault they follow.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench.chaos_check import read_lines, verdict

pytestmark = pytest.mark.no_redis

FAULTS = [
    {"at": 5.0, "kind": "kill-consumer", "target": "c1"},
    {"at": 9.0, "kind": "restart-redis", "target": "redis"},
]


def produced(count: int) -> list[dict[str, Any]]:
    return [{"eid": f"e{i}", "key": f"k{i % 2}", "seq": i // 2 + 1} for i in range(count)]


def delivered(event: dict[str, Any], at: float, consumer: str = "c1") -> dict[str, Any]:
    partition = event["key"][-1]
    return {
        **event,
        "partition": partition,
        "offset": "x",
        "index": 0,
        "consumer": consumer,
        "time": 100 + at,
    }


def judge(
    published: list[dict[str, Any]], deliveries: list[dict[str, Any]], bound: int = 10
) -> dict[str, Any]:
    return verdict(published, [], deliveries, FAULTS, started=100, duplicate_bound=bound)


def test_every_event_once_in_order_passes():
    events = produced(6)
    found = judge(events, [delivered(e, i) for i, e in enumerate(events)])
    assert all(found["checks"].values())
    assert found["counts"] == {
        "published": 6,
        "unconfirmed": 0,
        "delivered": 6,
        "delivered_distinct": 6,
        "duplicated": 0,
        "extra_deliveries": 0,
        "lost": 0,
        "unexpected": 0,
    }


def test_a_lost_event_is_named():
    events = produced(6)
    found = judge(events, [delivered(e, i) for i, e in enumerate(events) if i != 3])
    assert found["counts"]["lost"] == 1
    assert not found["checks"]["none_lost"]
    assert found["examples"]["lost"] == [events[3]]


def test_a_key_delivered_out_of_order_fails_the_order_check():
    events = produced(6)  # k0: e0 (1), e2 (2), e4 (3)
    times = {0: 0, 1: 1, 2: 4, 3: 3, 4: 2, 5: 5}  # e4 before e2
    found = judge(events, [delivered(e, times[i]) for i, e in enumerate(events)])
    assert not found["checks"]["order_per_key"]
    (problem,) = found["examples"]["out_of_order"]
    assert (problem["before"]["eid"], problem["after"]["eid"]) == ("e4", "e2")


def test_a_redelivery_is_a_duplicate_put_down_to_the_fault_before_it_and_keeps_order():
    events = produced(4)
    deliveries = [delivered(e, i) for i, e in enumerate(events)]
    deliveries += [delivered(events[2], 6, "c2"), delivered(events[3], 10, "c2")]
    found = judge(events, deliveries, bound=1)
    assert found["counts"]["duplicated"] == 2
    assert found["duplicates_by_fault"] == {"kill-consumer c1": 1, "restart-redis redis": 1}
    assert found["checks"]["order_per_key"]  # first deliveries count for the order
    assert not found["checks"]["duplicates_bounded"]  # 2 extra deliveries > 1


def test_a_line_cut_short_by_a_kill_is_counted_not_fatal(tmp_path):
    path = tmp_path / "c1.jsonl"
    path.write_text('{"eid": "e0"}\n{"eid": "e1", "ke\n{"eid": "e2"}\n')
    records, broken = read_lines([path, tmp_path / "missing.jsonl"])
    assert [r["eid"] for r in records] == ["e0", "e2"]
    assert broken == 1


def test_each_partition_s_longest_pause_is_put_down_to_the_fault_before_it_began():
    events = produced(6)  # k0 → partition "0": e0, e2, e4 at 0, 6, 14
    times = {0: 0, 1: 1, 2: 6, 3: 3, 4: 14, 5: 4}
    found = judge(events, [delivered(e, times[i]) for i, e in enumerate(events)])
    assert found["longest_pause_per_partition"]["0"] == {
        "seconds": 8.0,
        "from": 6.0,
        "after": "kill-consumer c1",
    }
    assert found["longest_pause_per_partition"]["1"]["after"] == "none"
    # A pause that begins just before a fault is put down to it.
    times = {0: 0, 1: 1, 2: 4.5, 3: 3, 4: 12, 5: 4}
    found = judge(events, [delivered(e, times[i]) for i, e in enumerate(events)])
    assert found["longest_pause_per_partition"]["0"]["after"] == "kill-consumer c1"
