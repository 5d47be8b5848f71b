"""The shared-mode scripts against the real redis-server: what counts as a delivery when
sessions die or leave holding events, and what an ack clears.
"""

from __future__ import annotations

import asyncio
from typing import Any

from events import acks
from events.acks import SharedDelivery
from events.connections import async_redis_client, redis_client
from events.delivery import dead_key, delivered_key, sent_key
from events.plans import Plan
from events.recovery import RETIRE_CONSUMER_LUA
from events.streams import log_key
from tests.test_shared_session import shared_plan
from tests.test_stream_session import publish


def log(plan: Plan) -> str:
    return log_key(plan.partitions[0].stream, 0)


def read(plan: Plan, session: str, count: int) -> None:
    """A session reads ahead: Redis counts a delivery for each entry, sent or not."""
    redis_client().xreadgroup(plan.subscription, session, {log(plan): ">"}, count=count)


def dies(plan: Plan, session: str) -> None:
    """What the reclaim job does for a session whose heartbeat expired."""
    redis_client().eval(
        RETIRE_CONSUMER_LUA,
        2,
        log(plan),
        delivered_key(plan.partitions[0].stream, 0, plan.subscription),
        plan.subscription,
        session,
        plan.ack_timeout * 1000,
    )


def shared() -> SharedDelivery:
    return SharedDelivery(async_redis_client())


def prepare(plan: Plan) -> None:
    async def main() -> None:
        await shared().prepare(plan, plan.partitions[0], "BEGIN")

    asyncio.run(main())


def claim(plan: Plan, session: str) -> list[str]:
    async def main() -> list[str]:
        _, raw = await shared().claim_idle(plan, plan.partitions[0], session, 10, alone=False)
        return [offset.decode() for offset, _ in raw]

    return asyncio.run(main())


def send(plan: Plan, session: str, offsets: list[str]) -> set[str]:
    async def main() -> set[str]:
        return await shared().refresh(plan, plan.partitions[0], session, offsets)

    return asyncio.run(main())


def leave(plan: Plan, session: str) -> None:
    async def main() -> None:
        await shared().give_back(plan, plan.partitions[0], session)

    asyncio.run(main())


def ack(plan: Plan, offsets: list[str]) -> list[list[str]]:
    async def main() -> list[list[str]]:
        return await acks.ack(async_redis_client(), plan, [(plan.partitions[0], offsets)])

    return asyncio.run(main())


def read_ahead(plan: Plan, count: int) -> list[str]:
    """`count` events published, and read ahead by session "a"; their offsets."""
    prepare(plan)
    offsets = publish(plan, 0, count)
    read(plan, "a", count)
    return offsets


def records(plan: Plan) -> dict[str, str]:
    """What is recorded as sent: offset -> session."""
    key = sent_key(plan.partitions[0].stream, 0, plan.subscription)
    return {k.decode(): v.decode() for k, v in redis_client().hgetall(key).items()}


def counts(plan: Plan) -> dict[str, int]:
    pending = redis_client().xpending_range(log(plan), plan.subscription, "-", "+", 100)
    return {p["message_id"].decode(): p["times_delivered"] for p in pending}


def dead(plan: Plan) -> list[str]:
    entries = redis_client().xrange(dead_key(plan.partitions[0].stream, 0, plan.subscription))
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
    assert records(plan) == {o: "a" for o in offsets}

    assert ack(plan, offsets[:1]) == [[acks.ACKED]]
    assert records(plan) == {offsets[1]: "a"}


def test_an_event_trimmed_before_its_send_is_neither_sent_nor_recorded():
    plan = shared_plan(1)
    offsets = read_ahead(plan, 2)
    redis_client().xtrim(log(plan), maxlen=1, approximate=False)  # retention took the first

    assert send(plan, "a", offsets) == {offsets[1]}
    assert records(plan) == {offsets[1]: "a"}


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

    async def main() -> tuple[int, list[Any]]:
        return await shared().claim_idle(plan, plan.partitions[0], "b", 2, alone=False)

    claimed, entries = asyncio.run(main())
    # Both were sent once: past max_deliveries, so none to deliver, yet the claim took its
    # full count, and the session asks again at once instead of at the next claim period.
    assert (claimed, entries) == (2, [])
    assert dead(plan) == offsets
