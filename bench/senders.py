"""The three ways the publish benchmark stores a batch of events, as `Send` functions:
through the REST API, through the API's own Lua append script called directly, and as
pipelined XADDs (the limit).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable

import httpx
import redis.asyncio as aioredis

from bench.common import BenchError
from bench.workload import EVENT_TYPE, RETENTION_MS, EventSource
from events.core.entries import EVENT
from events.store.keys import eid_key, log_key
from events.store.partitions import PUBLISH
from events.store.scripts import raise_first, run_all

Send = Callable[[int], Awaitable[tuple[int, int]]]  # batch size → (events, bytes) stored


def api_sender(client: httpx.AsyncClient, source: EventSource) -> Send:
    url = f"/api/event-types/{EVENT_TYPE}/events"

    async def send(batch_size: int) -> tuple[int, int]:
        _, payloads = source.take(batch_size)
        body = b"[" + b",".join(payloads) + b"]"
        response = await client.post(url, content=body)
        if response.status_code != 200:
            raise BenchError(f"HTTP {response.status_code}: {response.text[:300]}")
        return batch_size, sum(map(len, payloads))

    return send


def direct_sender(client: aioredis.Redis, source: EventSource, stream: str) -> Send:
    async def send(batch_size: int) -> tuple[int, int]:
        eids, payloads = source.take(batch_size)
        keys = [log_key(stream, source.partition(eid)) for eid in eids]
        async with client.pipeline(transaction=False) as pipe:
            for key, payload in zip(keys, payloads, strict=True):
                pipe.xadd(key, {EVENT: payload})
            await pipe.execute()
        return batch_size, sum(map(len, payloads))

    return send


def lua_sender(client: aioredis.Redis, source: EventSource, stream: str) -> Send:
    """What `events.store.partitions.append` sends, from here: one Lua call per partition."""
    dedup_seconds = 24 * 3600

    async def send(batch_size: int) -> tuple[int, int]:
        eids, payloads = source.take(batch_size)
        grouped: dict[int, tuple[list[str], list[bytes | int]]] = defaultdict(
            lambda: ([], [dedup_seconds, 0, RETENTION_MS])
        )
        for eid, payload in zip(eids, payloads, strict=True):
            partition = source.partition(eid)
            keys, args = grouped[partition]
            if not keys:
                keys.append(log_key(stream, partition))
            keys.append(eid_key(stream, partition, eid))
            args.append(payload)
        raise_first(await run_all(client, [(PUBLISH, k, a) for k, a in grouped.values()]))
        return batch_size, sum(map(len, payloads))

    return send
