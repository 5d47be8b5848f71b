"""Commits against the real redis-server: one script call for one partition, the lease as
the only liveness check, and the committing process telling its own session directly.
"""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio.connection import AbstractConnection

from events.core.offsets import BEGIN, Cursor
from events.core.problems import Problem
from events.core.stream_params import StreamParams
from events.store.connections import async_redis_client, redis_client
from events.store.keys import committed_key, control_channel, log_key, sessions_key
from events.store.leases import Leases
from events.store.ordered_delivery import Delivery
from events.store.sessions import Sessions
from events.streaming import commits
from events.streaming.ordered_session import OrderedSession
from tests.sessions import Collector, make_plan, publish


class RoundTrips:
    """Counts what the process sends to Redis: one send is one round trip (a pipeline, a
    command or a script call).
    """

    def __init__(self) -> None:
        self.count = 0


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> RoundTrips:
    counter = RoundTrips()
    send = AbstractConnection.send_packed_command

    async def counted(self, command, check_health=True):
        counter.count += 1
        await send(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
    return counter


async def sent_to(session: str, ttl_ms: int, count: int):
    """A plan whose one partition `session` (live for `ttl_ms`) holds, with `count` events
    read and sent to it; their offsets.
    """
    plan = make_plan(1)
    ids = publish(plan, 0, count)
    client = async_redis_client()
    membership = await Sessions(client).register(plan.subscription, session, ttl_ms)
    partition = plan.partitions[0]
    lease = await Leases(client).acquire(
        partition.store_id, 0, plan.subscription, session, membership.expires_at
    )
    assert lease is not None
    delivery = Delivery(client)
    await delivery.prepare(lease, BEGIN)
    await delivery.read([(lease, count)])
    assert await delivery.mark_sent(lease, ids[-1], [ids[-1]])
    return plan, ids


def test_a_session_whose_heartbeat_expired_cannot_commit_before_anyone_reaps_it():
    async def scenario():
        plan, ids = await sent_to("quiet", 300, 3)
        sessions = Sessions(async_redis_client())
        async with asyncio.timeout(10):
            # The server's clock has no event to wait on: poll it.
            while await sessions.live(plan.subscription):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        # Expired, and still in the set: nobody reaped it.
        assert redis_client().zscore(sessions_key(plan.subscription), "quiet") is not None
        with pytest.raises(Problem) as refused:
            await commits.commit(plan, "quiet", [Cursor("t", 0, ids[1])])
        return plan, refused.value

    plan, problem = asyncio.run(scenario())
    assert problem.status == 422
    assert "'quiet' is not a live session" in problem.detail
    store_id = plan.partitions[0].store_id
    assert redis_client().xpending(log_key(store_id, 0), plan.subscription)["pending"] == 3
    assert redis_client().get(committed_key(store_id, 0, plan.subscription)) == b"BEGIN"


def test_a_live_session_that_does_not_hold_the_partition_is_told_so():
    async def scenario():
        plan, ids = await sent_to("holder", 10_000, 2)
        await Sessions(async_redis_client()).register(plan.subscription, "other", 10_000)
        with pytest.raises(Problem) as refused:
            await commits.commit(plan, "other", [Cursor("t", 0, ids[0])])
        return refused.value

    assert "does not own partition 0" in asyncio.run(scenario()).detail


def test_a_commit_of_one_partition_is_one_round_trip(round_trips):
    async def scenario():
        plan, ids = await sent_to("a", 10_000, 3)
        await commits.commit(plan, "a", [Cursor("t", 0, BEGIN)])  # loads the script once
        before = round_trips.count
        results = await commits.commit(plan, "a", [Cursor("t", 0, ids[1])])
        return results, round_trips.count - before

    assert asyncio.run(scenario()) == (["committed"], 1)


def test_a_commit_in_the_session_s_process_tells_it_directly_and_publishes_nothing():
    def published() -> int:
        stats = redis_client().info("commandstats")
        return int(stats.get("cmdstat_publish", {}).get("calls", 0))

    async def scenario():
        plan = make_plan(1)
        ids = publish(plan, 0, 2)
        session = OrderedSession(plan, StreamParams(batch_limit=2, batch_flush_timeout=30))
        await session.open()
        out = Collector()
        task = asyncio.create_task(session.run(out))
        await out.wait(lambda: len(out.events()) == 2)
        owned = session._owned[("t", 0)]
        before = published()
        results = await commits.commit(plan, session.id, [Cursor("t", 0, ids[1])])
        told = not owned.unacked  # at once: no message had to come back through Redis
        after = published()
        session.shutdown()
        await task
        return results, told, after - before

    assert asyncio.run(scenario()) == (["committed"], True, 0)


def test_a_commit_for_a_session_elsewhere_is_published_to_it():
    async def scenario():
        plan, ids = await sent_to("elsewhere", 10_000, 1)
        pubsub = async_redis_client().pubsub()
        await pubsub.subscribe(control_channel(plan.subscription))
        await pubsub.get_message(timeout=5)  # the subscribe confirmation
        await commits.commit(plan, "elsewhere", [Cursor("t", 0, ids[0])])
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
        await pubsub.aclose()
        return plan, ids, message

    plan, ids, message = asyncio.run(scenario())
    store_id = plan.partitions[0].store_id
    assert message["data"].decode() == f"commit elsewhere {store_id}:0 {ids[0]}"
