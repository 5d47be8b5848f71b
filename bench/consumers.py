"""The consumers that the consume benchmark compares on the same stored events.

- `SubscriptionReader`: one session of a subscription's NDJSON stream, as a good Nakadi
  client reads it: batches are parsed as they arrive, and a second connection commits
  the newest cursor of each partition asynchronously, one commit in flight at a time
  (what arrives meanwhile is coalesced), so reading never waits on a commit.
- `drain_direct`: the limit, redis-py `XREADGROUP` on every partition's stream and `XACK`,
  each batch's acks pipelined with the next read, in this process.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import redis

from bench.common import BenchError, percentile_ms
from bench.cpu import CpuUse
from bench.workload import EVENT_TYPE
from events.core.entries import EVENT
from events.core.offsets import parse_offset
from events.store.keys import log_key

# Called with a batch's events and the time (time.time_ns()) its bytes were read.
OnEvents = Callable[[list[dict[str, Any]], int], None]


@dataclass
class Consumed(CpuUse):
    """What one consumer received and committed (or acked)."""

    path: str
    events: int = 0  # events received
    committed: int = 0  # of those, committed (api) or acked (direct)
    bytes: int = 0  # stream body bytes (api) or event bytes (direct) received
    batches: int = 0  # batches with events
    keep_alives: int = 0  # batches without
    commits: int = 0
    commit_seconds: list[float] = field(default_factory=list)  # one per commit request
    started: float = 0.0  # perf_counter: request sent / first XREADGROUP
    first_batch: float = 0.0
    finished: float = 0.0  # the last commit answered / the last XACK replied
    close_info: dict[str, Any] | None = None  # the "info" with the stream's close reason
    last_offsets: dict[int, str] = field(default_factory=dict)  # partition → newest received
    per_partition: dict[int, int] = field(default_factory=dict)  # partition → events received
    server_offsets: dict[int, str] = field(default_factory=dict)  # committed, as the API says
    errors: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds of each process …
    cpu_wall: float = 0.0  # … over this many seconds of wall time

    @property
    def seconds(self) -> float:
        return max(self.finished - self.started, 1e-9)

    @property
    def events_per_second(self) -> float:
        """Events committed per second, from the first request to the last commit's answer."""
        return self.committed / self.seconds

    def cpu_per_event(self, process: str) -> float:
        """CPU microseconds `process` spent per event committed."""
        used = self.cpu.get(process, math.nan)
        return 1e6 * used / self.committed if self.committed else math.nan

    def commit_ms(self) -> dict[str, float | None]:
        return {
            "p50": percentile_ms(self.commit_seconds, 50),
            "p99": percentile_ms(self.commit_seconds, 99),
            "max": percentile_ms(self.commit_seconds, 100),
        }


def consumer_http(server_url: str, token: str) -> httpx.AsyncClient:
    """The consumer's client: one connection streams, another commits."""
    return httpx.AsyncClient(
        base_url=server_url,
        timeout=httpx.Timeout(30),
        limits=httpx.Limits(max_connections=4, max_keepalive_connections=4),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )


async def subscribe(http: httpx.AsyncClient, read_from: str) -> str:
    """A new subscription of the benchmark's event type, with a consumer group of its own."""
    body = {
        "owning_application": "bench",
        "event_types": [EVENT_TYPE],
        "read_from": read_from,
        "consumer_group": f"bench-{uuid.uuid4().hex[:12]}",
    }
    response = await http.post("/api/subscriptions", content=orjson.dumps(body))
    if response.status_code != 201:
        raise BenchError(f"subscription: HTTP {response.status_code}: {response.text[:300]}")
    subscription: str = response.json()["id"]
    return subscription


class _Committer:
    """Commits the newest cursor of each partition, one request at a time, coalescing."""

    def __init__(
        self, http: httpx.AsyncClient, url: str, stats: Consumed, target: int, interval: float
    ) -> None:
        self._http, self._url, self._stats, self._target = http, url, stats, target
        self._interval = interval  # seconds from one commit's start to the next's, at least
        self._pending: dict[tuple[str, str], tuple[dict[str, Any], int]] = {}
        self._committed: dict[tuple[str, str], int] = {}
        self._wakeup = asyncio.Event()
        self.stream_id = ""
        self.all_committed = asyncio.Event()  # set once `target` events are committed
        self.idle = asyncio.Event()  # set while nothing waits to be committed
        self.idle.set()

    def offer(self, cursor: dict[str, Any], events_so_far: int) -> None:
        """Commit `cursor` soon; `events_so_far`: the partition's events up to it."""
        self._pending[(cursor["event_type"], cursor["partition"])] = (cursor, events_so_far)
        self.idle.clear()
        self._wakeup.set()

    async def run(self) -> None:
        while True:
            await self._wakeup.wait()
            last = self._stats.commit_seconds[-1] if self._stats.commit_seconds else 0.0
            if self._interval > last:  # spread commits out (--commit-interval)
                await asyncio.sleep(self._interval - last)
            self._wakeup.clear()
            taken, self._pending = self._pending, {}
            started = time.perf_counter()
            response = await self._http.post(
                self._url,
                content=orjson.dumps({"items": [cursor for cursor, _ in taken.values()]}),
                headers={"X-Nakadi-StreamId": self.stream_id, "Content-Type": "application/json"},
            )
            finished = time.perf_counter()
            if response.status_code not in (200, 204):
                raise BenchError(f"commit: HTTP {response.status_code}: {response.text[:300]}")
            if response.status_code == 200:  # Nakadi: some cursor was not newer than committed
                results = [item.get("result") for item in response.json().get("items", [])]
                if any(result not in ("committed", "outdated") for result in results):
                    raise BenchError(f"commit: unexpected results {results}")
            self._stats.commits += 1
            self._stats.commit_seconds.append(finished - started)
            for key, (_, count) in taken.items():
                self._committed[key] = max(self._committed.get(key, 0), count)
            self._stats.committed = sum(self._committed.values())
            if self._target and self._stats.committed >= self._target:
                self._stats.finished = finished
                self.all_committed.set()
            if not self._pending:
                self.idle.set()


class SubscriptionReader:
    """One stream session of a subscription, read as a good Nakadi client reads it."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        subscription: str,
        params: Mapping[str, int],
        stats: Consumed,
        *,
        target: int = 0,
        commit_interval: float = 0.0,
        on_events: OnEvents | None = None,
    ) -> None:
        """`target`: stop once that many events are committed (0: run until stopped);
        `commit_interval`: seconds from one commit's start to the next's, at least.
        """
        self._http, self._params, self.stats = http, dict(params), stats
        self._url = f"/api/subscriptions/{subscription}/events"
        self._on_events = on_events
        commits = f"/api/subscriptions/{subscription}/cursors"
        self._committer = _Committer(http, commits, stats, target, commit_interval)
        self.connected = asyncio.Event()  # the stream answered 200: the session is live

    async def run(self, stop: asyncio.Event | None = None, max_seconds: float = 600) -> None:
        """Read and commit until the target is committed, `stop` is set, the stream ends
        or `max_seconds` pass; then wait for the commits of what was read (up to 10 s).
        """
        stop = stop or asyncio.Event()
        reader = asyncio.create_task(self._read())
        committer = asyncio.create_task(self._committer.run())
        ended = {
            asyncio.create_task(self._committer.all_committed.wait()),
            asyncio.create_task(stop.wait()),
        }
        try:
            done, _ = await asyncio.wait(
                {reader, committer, *ended},
                timeout=max_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not done:
                self.stats.errors.append(f"not done after {max_seconds:.0f} s")
            # Let the last commits finish while the stream is still open: they count.
            idle = asyncio.create_task(self._committer.idle.wait())
            ended.add(idle)
            await asyncio.wait({idle, committer}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
            for worker in (reader, committer):
                if worker.done() and not worker.cancelled() and worker.exception() is not None:
                    raise worker.exception()  # type: ignore[misc]
            if not idle.done():
                self.stats.errors.append("commits still unanswered 10 s after the end")
            if self.stats.committed and not self.stats.finished:
                self.stats.finished = time.perf_counter()
        finally:
            for task in (reader, committer, *ended):
                task.cancel()
            await asyncio.gather(reader, committer, *ended, return_exceptions=True)

    async def _read(self) -> None:
        stats = self.stats
        stats.started = time.perf_counter()
        headers = {"Accept": "application/x-json-stream"}
        async with self._http.stream("GET", self._url, params=self._params, headers=headers) as r:
            if r.status_code != 200:
                await r.aread()
                raise BenchError(f"stream: HTTP {r.status_code}: {r.text[:300]}")
            self._committer.stream_id = r.headers.get("X-Nakadi-StreamId", "")
            if not self._committer.stream_id:
                raise BenchError("stream: no X-Nakadi-StreamId header")
            self.connected.set()
            # A batch line of 1,000 events (~1 MB) arrives in many chunks: keep the pieces
            # and search only each new chunk for the line's end (no quadratic re-copying).
            pieces: list[bytes] = []
            async for chunk in r.aiter_bytes():
                received_ns = time.time_ns()
                stats.bytes += len(chunk)
                if b"\n" not in chunk:
                    pieces.append(chunk)
                    continue
                head, *lines, tail = chunk.split(b"\n")
                for line in (b"".join([*pieces, head]), *lines):
                    if line.strip():
                        self._batch(orjson.loads(line), received_ns)
                pieces = [tail] if tail else []
        if any(piece.strip() for piece in pieces):
            stats.errors.append("stream: the last line was cut")

    def _batch(self, batch: dict[str, Any], received_ns: int) -> None:
        stats = self.stats
        if "close_reason" in batch.get("info", {}):
            stats.close_info = batch["info"]
        events = batch.get("events")
        if not events:
            stats.keep_alives += 1
            return
        if not stats.batches:
            stats.first_batch = time.perf_counter()
        stats.batches += 1
        stats.events += len(events)
        cursor = batch["cursor"]
        partition = int(cursor["partition"])
        previous = stats.last_offsets.get(partition)
        if previous is not None and parse_offset(cursor["offset"]) <= parse_offset(previous):
            stats.errors.append(f"partition {partition}: {cursor['offset']} after {previous}")
        stats.last_offsets[partition] = cursor["offset"]
        stats.per_partition[partition] = stats.per_partition.get(partition, 0) + len(events)
        self._committer.offer(cursor, stats.per_partition[partition])
        if self._on_events is not None:
            self._on_events(events, received_ns)


def drain_direct(
    redis_url: str, stream: str, partitions: int, expected: int, count: int
) -> Consumed:
    """Read `expected` events from every partition with a consumer group of its own (from
    the first entry) and ack them: the limit of one Python consumer process.
    """
    stats = Consumed("direct")
    client = redis.Redis.from_url(redis_url)
    group = "bench-limit"
    keys = [log_key(stream, p) for p in range(partitions)]
    try:
        for key in keys:
            client.xgroup_create(key, group, id="0")
        streams: dict[Any, Any] = {key: ">" for key in keys}
        stats.started = time.perf_counter()
        reply: Any = client.xreadgroup(group, "c", streams, count=count)
        stats.first_batch = time.perf_counter()
        while reply:
            acks: list[tuple[bytes, list[bytes]]] = []
            for key, entries in reply:
                ids = [entry_id for entry_id, _ in entries]
                stats.bytes += sum(len(fields[EVENT]) for _, fields in entries)
                partition = keys.index(key.decode())
                stats.per_partition[partition] = stats.per_partition.get(partition, 0) + len(ids)
                stats.last_offsets[partition] = ids[-1].decode()
                stats.events += len(ids)
                stats.batches += 1
                acks.append((key, ids))
            with client.pipeline(transaction=False) as pipe:
                for acked_key, ids in acks:
                    pipe.xack(acked_key, group, *ids)
                if stats.events < expected:
                    pipe.xreadgroup(group, "c", streams, count=count)
                replies = pipe.execute()
            stats.committed += sum(replies[: len(acks)])
            reply = replies[-1] if stats.events < expected else None
        stats.finished = time.perf_counter()
    finally:
        client.close()
    if stats.committed != expected:
        stats.errors.append(f"direct: {stats.committed} acked, {expected} stored")
    return stats
