"""The events the consume benchmark reads: its clients, its event type (the publish
benchmark's orders, whose schema also allows `sent_ns`), and a backlog published through
the API with the same number of events on every partition.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx
import redis

from bench.common import BenchError, World
from bench.workload import EVENT_TYPE, EventSource, create_event_type, event_type_body
from events.store.keys import log_key


def setup(world: World, partitions: int) -> tuple[dict[str, str], str]:
    """Clients (admin, producer, consumer) and the event type, whose schema also allows
    `sent_ns` (compatible mode refuses undeclared fields). Returns tokens and stream id.
    """
    tokens: dict[str, str] = world.django(
        "import json\n"
        "from events.catalog.clients import create_client\n"
        "admin = create_client('bench-admin', is_admin=True)[1]\n"
        f"producer = create_client('bench-producer', publish=[{EVENT_TYPE!r}])[1]\n"
        f"consumer = create_client('bench-consumer', consume=[{EVENT_TYPE!r}])[1]\n"
        "print(json.dumps({'admin': admin, 'producer': producer, 'consumer': consumer}))\n"
    )
    body = copy.deepcopy(event_type_body(partitions))
    schema = json.loads(body["schema"]["schema"])
    schema["properties"]["sent_ns"] = {"type": "integer", "minimum": 0}
    body["schema"]["schema"] = json.dumps(schema)
    return tokens, create_event_type(world, tokens["admin"], body, partitions)


def whole_batches(args: argparse.Namespace) -> int:
    """Events to store: --events rounded up to whole batches on every partition, so that no
    last batch waits for its flush timeout (by contract) while the clock runs.
    """
    per_partition = -(-args.events // args.partitions)
    return args.partitions * -(-per_partition // args.batch_limit) * args.batch_limit


def balanced_batches(source: EventSource, partitions: int, total: int) -> Iterator[list[bytes]]:
    """Requests of up to 1000 events, `total // partitions` for each partition: events are
    drawn from `source` and kept while their partition (the server's, from the eid) needs more.
    """
    wanted = [total // partitions] * partitions
    batch: list[bytes] = []
    while any(wanted):
        eids, payloads = source.take(1000)
        for eid, payload in zip(eids, payloads, strict=True):
            partition = source.partition(eid)
            if wanted[partition]:
                wanted[partition] -= 1
                batch.append(payload)
                if len(batch) == 1000:
                    yield batch
                    batch = []
    if batch:
        yield batch


async def prepublish(world: World, token: str, args: argparse.Namespace, total: int) -> None:
    """`total` events through the API, 1000 a request, 8 requests in flight."""
    source = EventSource(args.event_bytes, args.partitions)
    batches = balanced_batches(source, args.partitions, total)
    url = f"/api/event-types/{EVENT_TYPE}/events"
    async with httpx.AsyncClient(
        base_url=world.server_url,
        timeout=120,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    ) as http:

        async def producer() -> None:
            for batch in batches:  # shared: each batch is sent once
                response = await http.post(url, content=b"[" + b",".join(batch) + b"]")
                if response.status_code != 200:
                    raise BenchError(f"publishing: HTTP {response.status_code}: {response.text}")

        await asyncio.gather(*(producer() for _ in range(8)))


def stored(redis_url: str, stream: str, partitions: int) -> tuple[int, dict[int, str]]:
    """How many events the partitions hold, and each one's newest offset."""
    client = redis.Redis.from_url(redis_url)
    try:
        total, newest = 0, {}
        for p in range(partitions):
            info: Any = client.xinfo_stream(log_key(stream, p))
            total += info["length"]
            newest[p] = info["last-generated-id"].decode()
        return total, newest
    finally:
        client.close()
