"""A producer at a fixed rate, in a process of its own (so that its work does not delay the
consumer whose latency is measured): small batches POSTed on a timer that does not drift,
each event carrying `sent_ns`, the wall-clock time (time.time_ns()) it was sent at.

The schedule is open-loop: batch k is due at start + k·interval whatever happened to the
ones before (a late tick is sent at once, so the rate holds), and several requests may be
in flight at once, as with independent producers.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from bench.workload import EVENT_TYPE, EventSource

MAX_IN_FLIGHT = 64  # requests; more means the server cannot keep up: the run stops


@dataclass
class Pacing:
    """What the producer is asked to do."""

    server_url: str
    token: str
    rate: int  # events per second
    batch: int  # events per request
    warmup: float  # seconds sent before the measured window
    seconds: float  # the measured window
    event_bytes: int
    partitions: int


@dataclass
class Paced:
    """What the producer did; the window is in time.time_ns() of the batches' `sent_ns`."""

    sent: int = 0  # events sent
    acknowledged: int = 0  # events answered 200
    window_start_ns: int = 0
    window_end_ns: int = 0
    window_acknowledged: int = 0  # acknowledged events whose sent_ns is in the window
    publish_seconds: list[float] = field(default_factory=list)  # round trips in the window
    lag_seconds: list[float] = field(default_factory=list)  # each send's delay past its tick
    cpu_seconds: float = 0.0  # the producer process's, from its first tick to its last answer
    errors: list[str] = field(default_factory=list)


def with_sent_ns(payload: bytes, sent_ns: int) -> bytes:
    """An encoded event object with `"sent_ns": sent_ns` as its first field."""
    return b'{"sent_ns":%d,%s' % (sent_ns, payload[1:])


async def _pace(job: Pacing) -> Paced:
    source = EventSource(job.event_bytes, job.partitions, seed=2)
    result = Paced()
    interval = job.batch / job.rate
    ticks = round((job.warmup + job.seconds) / interval)
    url = f"/api/event-types/{EVENT_TYPE}/events"
    in_flight: set[asyncio.Task[None]] = set()
    http = httpx.AsyncClient(
        base_url=job.server_url,
        timeout=30,
        limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
        headers={"Authorization": f"Bearer {job.token}", "Content-Type": "application/json"},
    )

    async def post(body: bytes, sent_ns: int, in_window: bool) -> None:
        started = time.perf_counter()
        try:
            response = await http.post(url, content=body)
        except httpx.HTTPError as error:
            result.errors.append(f"publish: {type(error).__name__}: {error}"[:300])
            return
        if response.status_code != 200:
            result.errors.append(f"publish: HTTP {response.status_code}: {response.text[:300]}")
            return
        result.acknowledged += job.batch
        if in_window:
            result.window_acknowledged += job.batch
            result.publish_seconds.append(time.perf_counter() - started)

    await http.post(url, content=b"[]")  # open a connection before the clock starts
    start = time.perf_counter() + 0.05
    start_ns = time.time_ns() + 50_000_000
    result.window_start_ns = start_ns + int(job.warmup * 1e9)
    result.window_end_ns = start_ns + int((job.warmup + job.seconds) * 1e9)
    cpu_started = time.process_time()
    try:
        for tick in range(ticks):
            due = start + tick * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(in_flight) >= MAX_IN_FLIGHT or result.errors:
                result.errors.append(f"{len(in_flight)} requests in flight: stopped")
                break
            sent_ns = time.time_ns()
            result.lag_seconds.append(max(0.0, time.perf_counter() - due))
            _, payloads = source.take(job.batch)
            body = b"[" + b",".join(with_sent_ns(p, sent_ns) for p in payloads) + b"]"
            in_window = result.window_start_ns <= sent_ns < result.window_end_ns
            task = asyncio.create_task(post(body, sent_ns, in_window))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            result.sent += job.batch
        await asyncio.gather(*in_flight)
        result.cpu_seconds = time.process_time() - cpu_started
    finally:
        await http.aclose()
    return result


def _child(job: Pacing, results: multiprocessing.Queue[dict[str, Any]]) -> None:
    results.put(asdict(asyncio.run(_pace(job))))


class Pacer:
    """The producer process: `start()`, then `await finished()` for its results."""

    def __init__(self, job: Pacing) -> None:
        context = multiprocessing.get_context("spawn")  # no copy of this process's loop
        self._results: multiprocessing.Queue[dict[str, Any]] = context.Queue()
        self._process = context.Process(target=_child, args=(job, self._results), daemon=True)
        self._timeout = job.warmup + job.seconds + 60

    def start(self) -> None:
        self._process.start()

    async def finished(self) -> Paced:
        """The results, once the producer has sent everything and had its answers."""
        try:
            fields = await asyncio.to_thread(self._results.get, True, self._timeout)
        finally:
            await asyncio.to_thread(self._process.join, 10)
            self.stop()
        return Paced(**fields)

    def stop(self) -> None:
        """Idempotent; ends the process if it still runs."""
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
