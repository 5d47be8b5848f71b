"""Shared subscriptions, driven directly against the real redis-server: competing sessions
share the load, each event is acked on its own, what stays unacked past the ack timeout
goes to another session, and max_deliveries applies.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from events.core.plan import Plan
from events.core.stream_params import StreamParams
from events.store import shared_delivery
from events.store.connections import async_redis_client, redis_client
from events.store.keys import dead_key
from events.streaming.shared_session import SharedSession
from tests.sessions import Collector, offsets_of, publish, shared_plan


async def ack_all(plan: Plan, items: list[tuple[int, str]]) -> list[list[str]]:
    by_partition: dict[int, list[str]] = {}
    for partition, offset in items:
        by_partition.setdefault(partition, []).append(offset)
    return await shared_delivery.ack(
        async_redis_client(),
        plan,
        [(plan.partitions[p], offsets) for p, offsets in sorted(by_partition.items())],
    )


async def start(plan: Plan, params: StreamParams) -> tuple[SharedSession, Collector, asyncio.Task]:
    session = SharedSession(plan, params)
    await session.open()
    out = Collector()
    return session, out, asyncio.create_task(session.run(out))


def test_three_sessions_share_the_load_and_each_event_goes_to_one():
    async def scenario() -> tuple[list[int], list[tuple[int, str]], list[tuple[int, str]]]:
        plan = shared_plan(2)
        params = StreamParams(batch_limit=1, max_uncommitted_events=5, batch_flush_timeout=1)
        sessions = [await start(plan, params) for _ in range(3)]
        published = [(0, o) for o in publish(plan, 0, 15, "a")]
        published += [(1, o) for o in publish(plan, 1, 15, "b")]
        outs = [out for _, out, _ in sessions]
        # Nobody acks yet: each session holds its max_uncommitted_events, no more.
        for out in outs:
            await out.wait(lambda out=out: len(offsets_of(out)) == 5)
        first_round = [len(offsets_of(out)) for out in outs]
        acked: set[tuple[int, str]] = set()

        async def drained() -> bool:
            for out in outs:
                fresh = [item for item in offsets_of(out) if item not in acked]
                if fresh:
                    await ack_all(plan, fresh)
                    acked.update(fresh)
            return len(acked) >= 30

        async def until_drained() -> None:
            while not await drained():  # noqa: ASYNC110  (acks as batches arrive)
                await asyncio.sleep(0.02)

        await asyncio.wait_for(until_drained(), 20)
        for session, _, task in sessions:
            session.shutdown()
            await task
        delivered = [item for out in outs for item in offsets_of(out)]
        return first_round, delivered, published

    first_round, delivered, published = asyncio.run(scenario())
    assert first_round == [5, 5, 5]  # the load is spread, within each session's window
    assert sorted(delivered) == sorted(published)  # every event once, to one session


def test_an_unacked_event_goes_to_another_session_after_the_ack_timeout():
    async def scenario() -> tuple[list[str], list[str], list[list[str]], float]:
        plan = shared_plan(1, ack_timeout=1)
        params = StreamParams(batch_limit=1, max_uncommitted_events=1, batch_flush_timeout=1)
        first, first_out, first_task = await start(plan, params)
        (offset,) = publish(plan, 0, 1)
        await first_out.wait(lambda: bool(offsets_of(first_out)))
        sent_at = asyncio.get_running_loop().time()
        second, second_out, second_task = await start(plan, params)
        await second_out.wait(lambda: bool(offsets_of(second_out)))
        waited = asyncio.get_running_loop().time() - sent_at
        # The first session learns it lost the event: its window is free again.
        publish(plan, 0, 2, "later")
        await first_out.wait(lambda: len(offsets_of(first_out)) == 2)
        results = await ack_all(plan, [(0, offset)])
        for session, task in ((first, first_task), (second, second_task)):
            session.shutdown()
            await task
        return (
            [o for _, o in offsets_of(first_out)],
            [o for _, o in offsets_of(second_out)],
            results,
            waited,
        )

    first, second, results, waited = asyncio.run(scenario())
    assert second[0] == first[0]  # redelivered, to the other session
    assert waited >= 1.0  # not before the ack timeout
    assert results == [["acked"]]


def test_a_session_that_leaves_gives_its_unacked_events_to_the_others_at_once():
    async def scenario() -> tuple[list[str], list[str], float]:
        plan = shared_plan(1, ack_timeout=30)
        params = StreamParams(batch_limit=1, max_uncommitted_events=1, batch_flush_timeout=1)
        _, first_out, first_task = await start(plan, params)
        publish(plan, 0, 1)
        await first_out.wait(lambda: bool(offsets_of(first_out)))
        second, second_out, second_task = await start(plan, params)
        first_task.cancel()  # its client left (a drained session waits for acks first)
        with contextlib.suppress(asyncio.CancelledError):
            await first_task
        left_at = asyncio.get_running_loop().time()
        await second_out.wait(lambda: bool(offsets_of(second_out)), within=5)
        took = asyncio.get_running_loop().time() - left_at
        second.shutdown()
        await second_task
        return [o for _, o in offsets_of(first_out)], [o for _, o in offsets_of(second_out)], took

    first, second, took = asyncio.run(scenario())
    assert second == first
    assert took < 30  # long before the ack timeout


def test_an_event_past_max_deliveries_becomes_a_dead_letter():
    async def scenario() -> tuple[Any, list[str], list[str]]:
        plan = shared_plan(1, ack_timeout=1, max_deliveries=1)
        params = StreamParams(batch_limit=1, max_uncommitted_events=1, batch_flush_timeout=1)
        # Alone, the session gets its own unacked event back after the ack timeout: that
        # would be a second delivery, one more than max_deliveries.
        session, out, task = await start(plan, params)
        poison = publish(plan, 0, 1, "poison")
        await out.wait(lambda: bool(offsets_of(out)))
        dead = dead_key(plan.partitions[0].store_id, 0, plan.subscription)

        async def until_dead() -> None:
            # Redis state has no event to wait on: poll it.
            while not redis_client().xlen(dead):  # noqa: ASYNC110
                await asyncio.sleep(0.05)

        await asyncio.wait_for(until_dead(), 10)
        later = publish(plan, 0, 1, "later")
        await out.wait(lambda: len(offsets_of(out)) == 2)
        session.shutdown()
        await task
        return redis_client().xrange(dead), poison + later, [o for _, o in offsets_of(out)]

    entries, published, seen = asyncio.run(scenario())
    assert len(entries) == 1
    fields = entries[0][1]
    assert fields[b"o"].decode() == published[0]
    assert fields[b"why"] == b"max_deliveries"
    assert int(fields[b"n"]) == 1
    assert seen == published  # the poison event once, then the later one: it moved on


def test_a_session_alone_never_takes_back_twice_what_it_still_holds_unsent():
    async def scenario() -> tuple[list[str], list[list[str]]]:
        # The events wait in its buffer for the batch to fill (2 s), past the ack timeout
        # (1 s): alone, the session claims its own idle events, which it still holds.
        plan = shared_plan(1, ack_timeout=1)
        params = StreamParams(batch_limit=5, max_uncommitted_events=10, batch_flush_timeout=2)
        session, out, task = await start(plan, params)
        published = publish(plan, 0, 2)
        await out.wait(lambda: bool(offsets_of(out)), within=5)
        session.shutdown()
        await task
        return published, [batch.offsets for batch in out.batches if batch.offsets]

    published, batches = asyncio.run(scenario())
    assert batches[0] == published
