"""A cancelled stream session leaves at once, also when the cancellation came in the same
loop turn as a wake-up or was swallowed by code the session awaited (Python 3.11's
`asyncio.wait_for`, CPython gh-86296). Before, such a session streamed on to a client that
had left and kept its partitions until Daphne killed the request 10 s later.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from events.core.framing import Batch
from events.core.plan import Plan
from events.core.stream_params import StreamParams
from events.store.connections import redis_client
from events.store.hub import hub
from events.store.keys import lease_key, sessions_key
from events.streaming.ordered_session import OrderedSession
from tests.sessions import Collector, make_plan, publish, wait_for

PARAMS = StreamParams(batch_flush_timeout=30, commit_timeout=60, max_uncommitted_events=100)


def has_left(plan: Plan, session: OrderedSession) -> bool:
    """Whether the session gave its partition back and left the subscription."""
    partition = plan.partitions[0]
    lease = lease_key(partition.store_id, partition.partition, plan.subscription)
    return not redis_client().exists(lease) and (
        redis_client().zscore(sessions_key(plan.subscription), session.id) is None
    )


async def ended(task: asyncio.Task[str], within: float = 2.0) -> bool:
    done, _ = await asyncio.wait({task}, timeout=within)
    return task in done and task.cancelled()


def test_a_cancel_in_the_same_turn_as_a_wake_up_ends_the_session_and_frees_its_partition():
    async def scenario() -> tuple[bool, bool]:
        plan = make_plan(1)
        session = OrderedSession(plan, PARAMS)
        await session.open()
        task = asyncio.create_task(session.run(Collector()))
        await wait_for(lambda: len(session._owned) == 1)
        key = session._owned[("t", 0)].key
        loop = asyncio.get_running_loop()

        def cancel() -> None:  # the client leaves as a new event arrives
            loop.call_soon(task.cancel)

        # The hub wakes the session and this watcher in one step: the cancel comes in the
        # turn in which the session's wake-up completes.
        hub().watch(key, cancel)
        publish(plan, 0, 1)
        try:
            return await ended(task), has_left(plan, session)
        finally:
            hub().unwatch(key, cancel)
            session.shutdown()

    stopped, left = asyncio.run(scenario())
    assert stopped
    assert left


class SwallowingSend:
    """Takes batches; the first send swallows a cancellation that reaches it, as Python
    3.11's `asyncio.wait_for` (around each of redis-py's socket writes) does when the write
    completes in the same turn.
    """

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self.sending = asyncio.Event()

    async def __call__(self, out: Sequence[Batch]) -> None:
        self.batches.extend(out)
        if self.sending.is_set():
            return
        self.sending.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()  # until cancelled


def test_a_cancel_swallowed_by_code_the_session_awaited_still_ends_it_at_once():
    async def scenario() -> tuple[bool, bool]:
        plan = make_plan(1)
        publish(plan, 0, 1)
        session = OrderedSession(plan, PARAMS)
        await session.open()
        send = SwallowingSend()
        task = asyncio.create_task(session.run(send))
        await asyncio.wait_for(send.sending.wait(), 10)
        task.cancel()
        try:
            return await ended(task), has_left(plan, session)
        finally:
            session.shutdown()

    stopped, left = asyncio.run(scenario())
    assert stopped
    assert left
