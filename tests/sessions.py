"""Helpers for tests that drive stream sessions in-process, against the real redis-server:
plans of throwaway partitions, events published straight to Redis, a collecting `send`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import orjson

from events.core.framing import Batch
from events.core.plan import Partition, Plan
from events.store import ordered_delivery
from events.store.connections import async_redis_client, redis_client
from events.store.keys import log_key


def make_plan(partitions: int) -> Plan:
    stream = uuid.uuid4().hex[:8]
    parts = tuple(Partition("t", stream, p) for p in range(partitions))
    return Plan(
        str(uuid.uuid4()),
        "ordered",
        60,
        parts,
        {(p.event_type, p.partition): "BEGIN" for p in parts},
    )


def publish(plan: Plan, partition: int, count: int, prefix: str = "e") -> list[str]:
    key = log_key(plan.partitions[partition].store_id, partition)
    return [
        redis_client().xadd(key, {"e": orjson.dumps(f"{prefix}{i}")}).decode() for i in range(count)
    ]


async def commit(plan: Plan, session: str, partition: int, offset: str) -> str:
    part = plan.partitions[partition]
    return await ordered_delivery.commit(
        async_redis_client(), plan.subscription, session, part.store_id, partition, offset
    )


class Collector:
    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self.changed = asyncio.Event()

    async def __call__(self, out) -> None:
        self.batches.extend(out)
        self.changed.set()

    def events(self, partition: int | None = None) -> list[str]:
        return [
            orjson.loads(e)
            for b in self.batches
            if partition is None or b.partition == partition
            for e in b.events
        ]

    async def wait(self, condition, within: float = 10.0) -> None:
        async def until() -> None:
            while not condition():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(until(), within)


async def wait_for(condition, within: float = 10.0) -> None:
    """Poll a condition on the session's own state, failing after `within` seconds."""

    async def until() -> None:
        # The session's state has no event to wait on: poll it.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    await asyncio.wait_for(until(), within)


def shared_plan(partitions: int, **changes: object) -> Plan:
    return dataclasses.replace(make_plan(partitions), mode="shared", **changes)  # type: ignore[arg-type]


def offsets_of(out: Collector) -> list[tuple[int, str]]:
    return [(b.partition, o) for b in out.batches for o in b.offsets]
