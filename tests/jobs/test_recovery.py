"""The reclaim job (events/jobs/recovery.py) and the jobs' leases, against the real
redis-server: expired sessions, their leases and consumers, lost groups; two runs at once.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import pytest

from events import jobs
from events.catalog import dead_letters
from events.core.plan import Plan
from events.jobs import recovery
from events.models import DeadLetter, EventType
from events.store.connections import redis_client
from events.store.job_leases import exclusive
from events.store.keys import (
    committed_key,
    control_channel,
    dead_key,
    lease_key,
    log_key,
    sessions_key,
)
from tests.helpers import subscribe
from tests.sessions import make_plan, publish

FOREVER = 10**15  # a session expiry far in the future (ms)


def counts(result: recovery.Reclaimed) -> tuple[int, int, int, int]:
    return (
        result.sessions_removed,
        result.leases_dropped,
        result.consumers_deleted,
        result.groups_rebuilt,
    )


def test_reclaim_clears_what_dead_sessions_left_and_nudges_the_live_ones():
    client = redis_client()
    plan = make_plan(2)
    sub = plan.subscription
    logs = [log_key(p.store_id, p.partition) for p in plan.partitions]
    for p in range(2):
        publish(plan, p, 2)
        client.xgroup_create(logs[p], sub, "0")
    client.zadd(sessions_key(sub), {"dead": 1, "live": FOREVER})
    client.hset(lease_key(plan.partitions[0].store_id, 0, sub), mapping={"session": "dead"})
    client.hset(lease_key(plan.partitions[1].store_id, 1, sub), mapping={"session": "live"})
    client.xreadgroup(sub, "dead", {logs[0]: ">"}, count=1)  # left pending
    read: Any = client.xreadgroup(sub, "gone", {logs[1]: ">"}, count=1)
    client.xack(logs[1], sub, read[0][1][0][0])  # nothing pending: may go
    control = client.pubsub()
    control.subscribe(control_channel(sub))
    control.get_message(timeout=1)

    first = recovery.reclaim(client, plan)
    nudge = control.get_message(timeout=1)
    second = recovery.reclaim(client, plan)

    assert counts(first) == (1, 1, 1, 0)
    assert nudge is not None
    assert nudge["data"] == b"rebalance"
    assert counts(second) == (0, 0, 0, 0)  # idempotent
    assert client.zrange(sessions_key(sub), 0, -1) == [b"live"]
    assert client.hget(lease_key(plan.partitions[1].store_id, 1, sub), "session") == b"live"
    names = {c["name"] for c in client.xinfo_consumers(logs[0], sub)}
    assert names == {b"dead"}  # kept: its pending entry was neither claimed nor acked
    client.xautoclaim(logs[0], sub, "live", 0, "0-0")  # the new owner claims it
    assert counts(recovery.reclaim(client, plan))[2] == 1
    assert {c["name"] for c in client.xinfo_consumers(logs[0], sub)} == {b"live"}


def test_a_live_session_s_consumers_of_earlier_leases_go_once_nothing_is_pending_for_them():
    client = redis_client()
    plan = make_plan(1)
    sub, log = plan.subscription, log_key(plan.partitions[0].store_id, 0)
    publish(plan, 0, 2)
    client.xgroup_create(log, sub, "0")
    client.zadd(sessions_key(sub), {"s": FOREVER})
    client.hset(
        lease_key(plan.partitions[0].store_id, 0, sub), mapping={"session": "s", "token": 3}
    )
    client.xreadgroup(sub, "s:1", {log: ">"}, count=1)  # its first lease: read, then claimed
    client.xautoclaim(log, sub, "s:3", 0, "0-0")
    client.xreadgroup(sub, "s:2", {log: ">"}, count=1)  # its second: still pending

    assert counts(recovery.reclaim(client, plan))[2] == 1
    assert {c["name"] for c in client.xinfo_consumers(log, sub)} == {b"s:2", b"s:3"}


def committed_at_the_second_of_five() -> tuple[Plan, list[str]]:
    """A plan of one partition holding five events, its database cursor at the second;
    the plan and the events' offsets.
    """
    plan = make_plan(1)
    offsets = publish(plan, 0, 5)
    part = plan.partitions[0]
    return dataclasses.replace(plan, offsets={part.position: offsets[1]}), offsets


def test_a_lost_group_is_rebuilt_from_the_committed_cursor_never_from_the_end():
    client = redis_client()
    plan, offsets = committed_at_the_second_of_five()
    part = plan.partitions[0]

    result = recovery.reclaim(client, plan)
    again = recovery.reclaim(client, plan)

    assert counts(result)[3] == 1
    assert counts(again)[3] == 0
    (group,) = client.xinfo_groups(log_key(part.store_id, 0))
    assert group["last-delivered-id"].decode() == offsets[1]
    read: Any = client.xreadgroup(plan.subscription, "s", {log_key(part.store_id, 0): ">"})
    assert [entry_id.decode() for entry_id, _ in read[0][1]] == offsets[2:]


def test_a_rebuilt_group_prefers_the_newer_offset_redis_kept():
    client = redis_client()
    plan, offsets = committed_at_the_second_of_five()
    part = plan.partitions[0]
    # The database lags Redis by the cursor writer's moment: Redis's own offset wins.
    client.set(committed_key(part.store_id, 0, plan.subscription), offsets[3])
    recovery.reclaim(client, plan)
    (group,) = client.xinfo_groups(log_key(part.store_id, 0))
    assert group["last-delivered-id"].decode() == offsets[3]


def _stage(event_type: EventType, subscription_id: str, count: int) -> None:
    client = redis_client()
    for i in range(count):
        client.xadd(
            dead_key(event_type.store_id, 0, subscription_id),
            {"o": f"1-{i}", "n": 10, "why": "max_deliveries", "e": b'{"n": %d}' % i},
        )


def _at_once(calls: list) -> list:
    start = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index: int) -> None:
        start.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


@pytest.mark.django_db(transaction=True)
def test_two_runs_of_a_job_at_once_store_each_dead_letter_once(order_type):
    subscription = subscribe(order_type.name)
    _stage(order_type, str(subscription.pk), 30)

    results = _at_once([jobs.dead_letters, jobs.dead_letters])

    assert DeadLetter.objects.filter(subscription=subscription).count() == 30
    stored = sorted(r.get("stored", 0) for r in results)
    assert stored == [0, 30]  # one run did the work; the other skipped or found nothing
    assert redis_client().xlen(dead_key(order_type.store_id, 0, str(subscription.pk))) == 0


@pytest.mark.django_db(transaction=True)
def test_storing_twice_without_the_lease_still_keeps_one_row_each(order_type):
    subscription = subscribe(order_type.name)
    _stage(order_type, str(subscription.pk), 20)
    found = list(type(subscription).objects.prefetch_related("event_types"))

    results = _at_once([lambda: dead_letters.collect(found), lambda: dead_letters.collect(found)])

    assert DeadLetter.objects.filter(subscription=subscription).count() == 20
    assert sum(results) == 20  # a row is new once, whichever run wrote it


@pytest.mark.django_db
def test_a_job_whose_lease_is_held_does_nothing(order_type):
    subscription = subscribe(order_type.name)
    _stage(order_type, str(subscription.pk), 1)
    with exclusive("dead_letters") as taken:
        assert taken
        assert jobs.dead_letters() == jobs.SKIPPED
    assert DeadLetter.objects.count() == 0
    assert jobs.dead_letters() == {"stored": 1}


@pytest.mark.django_db
def test_the_reclaim_job_runs_over_every_subscription(order_type):
    subscription = subscribe(order_type.name)
    redis_client().zadd(sessions_key(str(subscription.pk)), {"dead": 1})
    result = jobs.reclaim()
    assert result["sessions_removed"] == 1
    assert result["groups_rebuilt"] == 2  # both partitions' groups, from the cursors
    assert jobs.reclaim()["groups_rebuilt"] == 0


@pytest.mark.django_db
def test_an_entry_the_subscription_does_not_deliver_is_no_dead_letter_of_it(order_type):
    subscription = subscribe(order_type.name)
    redis_client().xadd(
        dead_key(order_type.store_id, 0, str(subscription.pk)),
        {"o": "1-0", "n": 10, "why": "max_deliveries", "e": b"{}", "r": "another-subscription"},
    )
    assert jobs.dead_letters() == {"stored": 0}
    assert not DeadLetter.objects.exists()
    assert redis_client().xlen(dead_key(order_type.store_id, 0, str(subscription.pk))) == 0


@pytest.mark.django_db
def test_an_offset_dead_again_after_its_replay_is_dead_again(order_type):
    subscription = subscribe(order_type.name)
    _stage(order_type, str(subscription.pk), 1)
    jobs.dead_letters()
    DeadLetter.objects.update(status=DeadLetter.Status.REPLAYED)
    _stage(order_type, str(subscription.pk), 1)  # the same offset, after a cursor reset
    assert jobs.dead_letters() == {"stored": 1}
    assert DeadLetter.objects.get().status == DeadLetter.Status.DEAD
