"""What a commit costs the server: one session is sent events in batches of one, and then a
client commits them one request at a time (one in flight, on a keep-alive connection), each
a real commit that acks an event. The peer in the same run is the floor of that request:
the same POST, refused (422) after authentication and the subscription lookup, before any
commit work. What a commit adds is the difference.

Rows: `refused` (the floor, `{"items": []}`), `1 partition` (one cursor a request, the
partitions in turn), `4 partitions` (the next cursor of each partition in one request).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from rich.table import Table

from bench.backlog import prepublish
from bench.common import BenchError, World, percentile_ms
from bench.consumers import consumer_http, subscribe
from bench.cpu import CpuMeter, CpuUse
from bench.results import fmt, rounded

Bodies = list[list[dict[str, Any]]]  # the cursors of each request


@dataclass
class CommitRun(CpuUse):
    """Requests of one kind, one in flight."""

    kind: str
    cursors_each: int
    seconds: list[float] = field(default_factory=list)  # one per request
    cpu: dict[str, float] = field(default_factory=dict)
    cpu_wall: float = 0.0

    def per_request_us(self, process: str) -> float | None:
        used = self.cpu.get(process)
        return 1e6 * used / len(self.seconds) if used is not None and self.seconds else None

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "cursors_per_request": self.cursors_each,
            "requests": len(self.seconds),
            "requests_per_second": rounded(len(self.seconds) / max(self.cpu_wall, 1e-9), 1),
            "round_trip_ms": {f"p{q:g}": percentile_ms(self.seconds, q) for q in (50, 90, 99)},
            "cpu_us_per_request": {
                k: rounded(self.per_request_us(k), 1) for k in ("daphne", "redis", "bench")
            },
        }


async def measure_commits(
    world: World, tokens: dict[str, str], args: argparse.Namespace, pids: dict[str, list[int]]
) -> list[CommitRun]:
    partitions, requests = args.partitions, args.commit_requests
    # One cursor a request takes requests / partitions of each partition's events; a
    # request of every partition's next cursor takes `requests`.
    per_partition = requests // partitions + requests
    total = per_partition * partitions
    async with consumer_http(world.server_url, tokens["consumer"]) as http:
        subscription = await subscribe(http, "end")
        await prepublish(world, tokens["producer"], args, total)
        params = {
            "batch_limit": 1,
            "max_uncommitted_events": total,
            "batch_flush_timeout": 1,
            "stream_timeout": 600,
        }
        url = f"/api/subscriptions/{subscription}/events"
        async with http.stream("GET", url, params=params) as stream:
            if stream.status_code != 200:
                await stream.aread()
                raise BenchError(f"commits stream: HTTP {stream.status_code}: {stream.text}")
            cursors: list[list[dict[str, Any]]] = [[] for _ in range(partitions)]
            arrived = asyncio.Event()
            # Read on to the end: a client that stops reading, or closes, ends its session.
            reader = asyncio.create_task(_read(stream, cursors, per_partition, arrived))
            try:
                async with asyncio.timeout(120):
                    await asyncio.wait(
                        {reader, asyncio.create_task(arrived.wait())},
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                if not arrived.is_set():
                    raise BenchError("commits: the stream ended before every event arrived")
                session = stream.headers["X-Nakadi-StreamId"]
                commits = f"/api/subscriptions/{subscription}/cursors"
                rounds = range(requests // partitions)
                one: Bodies = [[cursors[p].pop(0)] for _ in rounds for p in range(partitions)]
                every: Bodies = [[c.pop(0) for c in cursors] for _ in range(requests)]
                kinds: list[tuple[str, int, Bodies, int]] = [
                    ("refused", 0, [[] for _ in range(requests)], 422),
                    ("1 partition", 1, one, 204),
                    (f"{partitions} partitions", partitions, every, 204),
                ]
                runs = []
                for kind, each, bodies, status in kinds:
                    run = CommitRun(kind, each)
                    await _post_all(http, commits, session, bodies, status, run, pids)
                    runs.append(run)
            finally:
                reader.cancel()
    return runs


async def _read(
    stream: httpx.Response,
    cursors: list[list[dict[str, Any]]],
    per_partition: int,
    arrived: asyncio.Event,
) -> None:
    """Each partition's batch cursors into `cursors`, in order; `arrived` is set once every
    partition sent `per_partition`. Reads (keep-alive batches) until cancelled.
    """
    async for line in stream.aiter_lines():
        batch = orjson.loads(line)
        if batch.get("events"):
            cursor = batch["cursor"]
            cursors[int(cursor["partition"])].append(cursor)
            if all(len(c) == per_partition for c in cursors):
                arrived.set()


async def _post_all(
    http: httpx.AsyncClient,
    url: str,
    session: str,
    bodies: Bodies,
    status: int,
    run: CommitRun,
    pids: dict[str, list[int]],
) -> None:
    headers = {"X-Nakadi-StreamId": session}
    meter = CpuMeter(pids)
    for items in bodies:
        started = time.perf_counter()
        response = await http.post(url, content=orjson.dumps({"items": items}), headers=headers)
        run.seconds.append(time.perf_counter() - started)
        if response.status_code != status:
            raise BenchError(f"commits ({run.kind}): HTTP {response.status_code}: {response.text}")
    run.cpu, run.cpu_wall = meter.stop()


def render_commits(runs: list[CommitRun]) -> Table:
    table = Table(title="Commit requests, one in flight: a real commit each, and the refused floor")
    columns = ["", "requests", "req/s", "p50 ms", "p99 ms", "daphne µs/req", "redis µs/req"]
    for column in columns:
        table.add_column(column, justify="left" if not column else "right")
    for run in runs:
        table.add_row(
            run.kind,
            f"{len(run.seconds):,}",
            f"{len(run.seconds) / max(run.cpu_wall, 1e-9):,.0f}",
            fmt(percentile_ms(run.seconds, 50)),
            fmt(percentile_ms(run.seconds, 99)),
            fmt(run.per_request_us("daphne")),
            fmt(run.per_request_us("redis")),
        )
    return table
