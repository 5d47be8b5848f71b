"""The shared-mode scripts against the real redis-server: what counts as a delivery when
sessions die or leave holding events, and what an ack clears.
"""

from __future__ import annotations

import asyncio
from typing import Any

from events.core.plan import Plan
from events.store import shared_delivery
from events.store.connections import async_redis_client, redis_client
from events.store.keys import (
    batches_key,
    charged_key,
    dead_key,
    log_key,
    sent_key,
    skipped_key,
)
from events.store.ordered_delivery import retried_of
from events.store.recovery import RETIRE_CONSUMER
from events.store.shared_delivery import SharedDelivery
from tests.sessions import publish, shared_plan


def log(plan: Plan) -> str:
    return log_key(plan.partitions[0].store_id, 0)


def read(plan: Plan, session: str, count: int) -> None:
    """A session reads ahead: Redis counts a delivery for each entry, sent or not."""
    redis_client().xreadgroup(plan.subscription, session, {log(plan): ">"}, count=count)


def dies(plan: Plan, session: str) -> None:
    """What the reclaim job does for a session whose heartbeat expired."""
    keys = [
        log(plan),
        charged_key(plan.partitions[0].store_id, 0, plan.subscription),
        batches_key(plan.partitions[0].store_id, 0, plan.subscription),
    ]
    RETIRE_CONSUMER.run_sync(
        redis_client(), keys, [plan.subscription, session, plan.ack_timeout * 1000]
    )


def shared() -> SharedDelivery:
    return SharedDelivery(async_redis_client())


def prepare(plan: Plan) -> None:
    async def main() -> None:
        await shared().prepare(plan, plan.partitions[0], "BEGIN")

    asyncio.run(main())


def claim(plan: Plan, session: str, count: int = 10) -> list[str]:
    async def main() -> list[str]:
        _, raw, _ = await shared().claim_idle(plan, plan.partitions[0], session, count, False)
        return [offset.decode() for offset, _ in raw]

    return asyncio.run(main())


def send(plan: Plan, session: str, offsets: list[str], batch: int = 1) -> set[str]:
    """`session` sends `offsets` to its client as batch number `batch`."""

    async def main() -> set[str]:
        pairs = [(offset, batch) for offset in offsets]
        return await shared().refresh(plan, plan.partitions[0], session, pairs)

    return asyncio.run(main())


def leave(plan: Plan, session: str, charged_batch: int = 1) -> None:
    """`session` leaves; its client stopped in batch `charged_batch` (0: the server ended it)."""

    async def main() -> None:
        await shared().give_back(plan, plan.partitions[0], session, charged_batch)

    asyncio.run(main())


def ack(plan: Plan, offsets: list[str]) -> list[list[str]]:
    async def main() -> list[list[str]]:
        return await shared_delivery.ack(
            async_redis_client(), plan, [(plan.partitions[0], offsets)]
        )

    return asyncio.run(main())


def read_ahead(plan: Plan, count: int) -> list[str]:
    """`count` events published, and read ahead by session "a"; their offsets."""
    prepare(plan)
    offsets = publish(plan, 0, count)
    read(plan, "a", count)
    return offsets


def records(plan: Plan) -> dict[str, str]:
    """What is recorded as sent: offset -> "session batch"."""
    key = sent_key(plan.partitions[0].store_id, 0, plan.subscription)
    return {k.decode(): v.decode() for k, v in redis_client().hgetall(key).items()}


def counts(plan: Plan) -> dict[str, int]:
    pending = redis_client().xpending_range(log(plan), plan.subscription, "-", "+", 100)
    return {p["message_id"].decode(): p["times_delivered"] for p in pending}


def dead(plan: Plan) -> list[str]:
    entries = redis_client().xrange(dead_key(plan.partitions[0].store_id, 0, plan.subscription))
    return [fields[b"o"].decode() for _, fields in entries]


def test_what_dead_sessions_read_but_never_sent_is_not_counted_as_delivered():
    plan = shared_plan(1, max_deliveries=1)
    offsets = read_ahead(plan, 3)
    assert send(plan, "a", offsets[:1]) == {offsets[0]}
    dies(plan, "a")

    assert claim(plan, "b") == offsets[1:]  # b never sends them, and dies too
    dies(plan, "b")
    assert claim(plan, "c") == offsets[1:]

    assert dead(plan) == offsets[:1]  # sent once to "a": a second delivery is one too many
    assert counts(plan) == {offsets[1]: 1, offsets[2]: 1}


def test_a_session_leaving_cleanly_gives_back_what_it_sent_as_delivered():
    plan = shared_plan(1, max_deliveries=1)
    offsets = read_ahead(plan, 2)
    send(plan, "a", offsets[:1])
    leave(plan, "a")

    assert claim(plan, "b") == offsets[1:]
    assert dead(plan) == offsets[:1]
    assert counts(plan) == {offsets[1]: 1}


def test_an_ack_forgets_that_the_event_was_sent():
    plan = shared_plan(1)
    offsets = read_ahead(plan, 2)
    send(plan, "a", offsets)
    assert records(plan) == {o: "a 1" for o in offsets}

    assert ack(plan, offsets[:1]) == [[shared_delivery.ACKED]]
    assert records(plan) == {offsets[1]: "a 1"}


def test_an_event_trimmed_before_its_send_is_neither_sent_nor_recorded():
    plan = shared_plan(1)
    offsets = read_ahead(plan, 2)
    redis_client().xtrim(log(plan), maxlen=1, approximate=False)  # retention took the first

    assert send(plan, "a", offsets) == {offsets[1]}
    assert records(plan) == {offsets[1]: "a 1"}


def test_a_group_made_anew_forgets_what_the_lost_one_sent():
    plan = shared_plan(1)
    offsets = read_ahead(plan, 1)
    send(plan, "a", offsets)
    assert records(plan)
    redis_client().xgroup_destroy(log(plan), plan.subscription)  # Redis lost the group

    prepare(plan)

    assert records(plan) == {}


def test_a_claim_counts_what_became_dead_letters_as_claimed():
    plan = shared_plan(1, max_deliveries=1)
    offsets = read_ahead(plan, 2)
    send(plan, "a", offsets)
    dies(plan, "a")

    async def main() -> tuple[list[str], list[Any], list[int]]:
        return await shared().claim_idle(plan, plan.partitions[0], "b", 2, alone=False)

    claimed, entries, _ = asyncio.run(main())
    # Both were sent once: past max_deliveries, so none to deliver, yet the claim took its
    # full count, and the session asks again at once instead of at the next claim period.
    assert (claimed, entries) == (offsets, [])
    assert dead(plan) == offsets


def test_only_the_oldest_batch_a_session_did_not_see_acked_is_charged():
    plan = shared_plan(1, max_deliveries=1)
    offsets = read_ahead(plan, 5)
    send(plan, "a", offsets[:1], batch=1)
    send(plan, "a", offsets[1:3], batch=2)
    send(plan, "a", offsets[3:], batch=3)
    assert ack(plan, offsets[:1]) == [
        [shared_delivery.ACKED]
    ]  # batch 1 done; its client stops in 2
    dies(plan, "a")

    assert claim(plan, "b") == offsets[3:]
    assert dead(plan) == offsets[1:3]  # charged, and one delivery was all they may have
    assert counts(plan) == {offsets[3]: 1, offsets[4]: 1}  # sent after: not charged


def test_a_session_the_server_ends_charges_nothing():
    plan = shared_plan(1, max_deliveries=1)
    offsets = read_ahead(plan, 2)
    send(plan, "a", offsets)
    leave(plan, "a", charged_batch=0)  # a drain: its client did not fail

    assert claim(plan, "b") == offsets
    assert dead(plan) == []
    assert counts(plan) == {offsets[0]: 1, offsets[1]: 1}


def test_a_claim_reports_which_events_were_charged_before():
    plan = shared_plan(1)
    offsets = read_ahead(plan, 3)
    send(plan, "a", offsets[:2], batch=1)
    send(plan, "a", offsets[2:], batch=2)
    dies(plan, "a")

    async def main() -> frozenset[str]:
        _, raw, counts = await shared().claim_idle(plan, plan.partitions[0], "b", 10, False)
        return retried_of(raw, counts)

    assert asyncio.run(main()) == set(offsets[:2])  # each goes in a batch of its own


def test_a_claim_taken_in_parts_charges_only_the_oldest_batch():
    plan = shared_plan(1, max_deliveries=1)
    offsets = read_ahead(plan, 2)
    send(plan, "a", offsets[:1], batch=1)
    send(plan, "a", offsets[1:], batch=2)
    dies(plan, "a")

    assert claim(plan, "b", count=1) == []  # the first batch: charged, and dead
    assert claim(plan, "b", count=1) == offsets[1:]  # its client never got this far
    assert dead(plan) == offsets[:1]
    assert counts(plan) == {offsets[1]: 1}


def test_a_session_leaving_keeps_only_the_batch_its_client_stopped_in_chargeable():
    plan = shared_plan(1, max_deliveries=1)
    offsets = read_ahead(plan, 3)
    send(plan, "a", offsets[:1], batch=4)
    send(plan, "a", offsets[1:], batch=7)
    leave(plan, "a", charged_batch=4)  # its oldest batch on any partition

    assert claim(plan, "b") == offsets[1:]
    assert dead(plan) == offsets[:1]  # charged, and one delivery was all it may have
    assert records(plan) == {}
    assert counts(plan) == {offsets[1]: 1, offsets[2]: 1}


def test_a_claim_from_a_live_session_leaves_the_rest_of_its_batches_chargeable():
    plan = shared_plan(1, max_deliveries=1)
    offsets = read_ahead(plan, 2)
    send(plan, "a", offsets[:1], batch=1)
    send(plan, "a", offsets[1:], batch=2)
    dies(plan, "a")  # its entries are idle past the ack timeout; "a" itself lives on

    async def main() -> list[str]:
        _, raw, _ = await shared().claim_idle(plan, plan.partitions[0], "b", 1, False, ["a", "b"])
        return [offset.decode() for offset, _ in raw]

    assert asyncio.run(main()) == []  # batch 1: charged, and dead
    assert records(plan) == {offsets[1]: "a 2"}  # not marked uncharged: "a" is alive


def test_a_skipping_subscription_acks_and_counts_what_would_be_a_dead_letter():
    plan = shared_plan(1, max_deliveries=1, skip_unprocessable=True)
    offsets = read_ahead(plan, 2)
    send(plan, "a", offsets[:1])
    dies(plan, "a")

    assert claim(plan, "b") == offsets[1:]
    assert dead(plan) == []  # nothing stored: Nakadi's SKIP_EVENT
    assert counts(plan) == {offsets[1]: 1}  # offsets[0] acked
    skipped = skipped_key(plan.partitions[0].store_id, 0, plan.subscription)
    assert redis_client().get(skipped) == b"1"
