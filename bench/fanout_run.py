"""One fan-out measurement: N SSE readers on one server process, then publishes one at a
time; what the server's memory grew by, how long each event took to reach its last reader,
and the CPU the server spent per delivered event.

Steps, the same for Streamsite and its peer:
  1. one reader connects and receives an event: the server's RSS then is the baseline;
  2. N-1 more connect (at most --connect-concurrency waiting for their answer per worker);
  3. probe events are published until every reader has received one (a reader registers
     with the server's fan-out a little after its answer's head, so it may miss the first);
     the RSS then, minus the baseline, over N-1, is the memory per connection;
  4. --publishes events, each published once the last one has reached every reader and
     --interval seconds have passed since it was sent, each carrying `sent_ns`, the
     publisher's time.time_ns() just before its request. An event's latency to a reader is
     that reader's time.time_ns() when its bytes arrived, minus `sent_ns`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from bench.common import percentile
from bench.cpu import CpuMeter, CpuUse
from bench.sse_readers import ReaderPool, Target

POLL = 0.01  # seconds between looks at the readers' counts
PROBE_WAIT = 1.0  # seconds without a reader's first event before another probe is sent


@dataclass
class System:
    """One system under test, as the readers and the publisher see it."""

    name: str  # "streamsite" or "django-eventstream"
    host: str
    port: int
    path: str
    headers: dict[str, str]
    pid: int  # the one server process
    publish: Callable[[httpx.Client, int, int], None]  # (sent_ns, seq): one event
    check: bool  # hold one reader per worker to Streamsite's SSE contract
    strict: bool  # a lost reader or a missed delivery is an error (not a finding)
    source_base: int  # readers connect from 127.0.0.<source_base + worker>


@dataclass
class Published:
    """One measured event: when it was sent, and its latency (ns) to each reader."""

    seq: int
    sent_ns: int
    latencies: list[int] = field(default_factory=list)

    def to_last_ms(self) -> float | None:
        return max(self.latencies) / 1e6 if self.latencies else None


@dataclass
class FanoutRun(CpuUse):
    """What one system did with N readers."""

    system: str
    readers: int
    connected: int = 0
    failed: int = 0
    lost: int = 0
    connect_seconds: float = math.nan
    first_event_seconds: float = math.nan  # from the last connection to all having an event
    rss_baseline: int = 0  # bytes, with one reader
    rss_connected: int = 0  # bytes, with every reader connected and fed one event
    rss_after: int = 0  # bytes, after the measured publishes
    published: list[Published] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    reader_cpu_seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # make the run invalid
    findings: list[str] = field(default_factory=list)  # the peer's failures: results
    cpu: dict[str, float] = field(default_factory=dict)
    cpu_wall: float = 0.0

    @property
    def bytes_per_connection(self) -> float:
        if self.connected < 2 or not self.rss_connected:
            return math.nan
        return (self.rss_connected - self.rss_baseline) / (self.connected - 1)

    @property
    def deliveries(self) -> int:
        return sum(len(p.latencies) for p in self.published)

    @property
    def missed(self) -> int:
        return sum(max(0, self.connected - len(p.latencies)) for p in self.published)

    def to_last_ms(self, q: float) -> float | None:
        """A percentile over the publishes of the latency to the last reader; None when an
        event missed a reader (its latency to the last reader is then unbounded).
        """
        values = [p.to_last_ms() for p in self.published]
        if not values or self.missed or any(v is None for v in values):
            return None
        return percentile([v for v in values if v is not None], q)

    def reader_ms(self, q: float) -> float | None:
        """A percentile over every delivery of every measured event."""
        values = [v for p in self.published for v in p.latencies]
        return percentile(values, q) / 1e6 if values else None

    def cpu_per_delivery_us(self, process: str = "server") -> float:
        deliveries = self.deliveries
        return 1e6 * self.cpu.get(process, math.nan) / deliveries if deliveries else math.nan


def rss_bytes(pid: int) -> int:
    """The resident set of process `pid` (VmRSS), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise OSError(f"no VmRSS for process {pid}")


class Fanout:
    """Runs the steps above for one system and N readers (`run`)."""

    def __init__(
        self,
        system: System,
        readers: int,
        args: Any,
        other_pids: dict[str, list[int]],
        console: Console,
        alive: Callable[[], None],
    ) -> None:
        self.system = system
        self.result = FanoutRun(system.name, readers)
        self.args = args
        self.other_pids = other_pids
        self.console = console
        self.alive = alive  # raises if a server process died
        self.seq = 0

    def say(self, text: str) -> None:
        self.console.print(f"[dim]{self.system.name}, {self.result.readers:,} readers: {text}[/]")

    def run(self) -> FanoutRun:
        system, args, result = self.system, self.args, self.result
        targets = [
            Target(
                system.host,
                system.port,
                system.path,
                system.headers,
                source=f"127.0.0.{system.source_base + worker}",
                check=system.check,
                connect_concurrency=args.connect_concurrency,
            )
            for worker in range(min(args.workers, result.readers))
        ]
        pool = ReaderPool(targets)
        with httpx.Client(timeout=30) as http:
            try:
                self._measure(pool, http)
            finally:
                status = pool.status() if all(p.is_alive() for p in pool.processes) else None
                pool.close()
        if status is not None:
            result.checks = status["checks"]
            result.lost = status["lost"]
            problems = status["errors"] + [p for c in result.checks for p in c["problems"]]
            (result.errors if system.strict else result.findings).extend(problems)
            if system.strict and status["lost"]:
                result.errors.append(f"{status['lost']} readers were closed by the server")
        if system.strict and result.missed:
            result.errors.append(f"{result.missed} deliveries missed their reader")
        elif result.missed:
            result.findings.append(f"{result.missed} deliveries never reached their reader")
        return result

    def _measure(self, pool: ReaderPool, http: httpx.Client) -> None:
        system, args, result = self.system, self.args, self.result
        # 1. The baseline: one reader that has received an event.
        pool.open(1)
        self._wait(pool, lambda s: s["connected"] + s["failed"] >= 1, 30, "the first reader")
        self._probe_until(pool, http, 1, deadline=time.monotonic() + 30)
        result.rss_baseline = rss_bytes(system.pid)
        # 2. The other readers.
        started = time.monotonic()
        pool.open(result.readers - 1)
        status = self._wait(
            pool,
            lambda s: s["connected"] + s["failed"] >= result.readers,
            args.connect_timeout,
            f"{result.readers:,} readers to connect",
            progress=True,
        )
        result.connect_seconds = time.monotonic() - started
        result.connected, result.failed = status["connected"], status["failed"]
        self.say(f"{result.connected:,} connected in {result.connect_seconds:.1f} s")
        if result.failed or result.connected < result.readers:
            missing = result.readers - result.connected
            text = f"{missing:,} of {result.readers:,} readers did not connect"
            (result.errors if system.strict else result.findings).append(text)
        # 3. Every reader has an event: the memory per connection.
        started = time.monotonic()
        self._probe_until(pool, http, result.connected, deadline=started + args.connect_timeout)
        result.first_event_seconds = time.monotonic() - started
        result.rss_connected = rss_bytes(system.pid)
        self.say(
            f"every reader had an event after {result.first_event_seconds:.1f} s; RSS "
            f"{result.rss_baseline / 2**20:.0f} → {result.rss_connected / 2**20:.0f} MiB"
        )
        # 4. The measured publishes.
        pids = {"server": [system.pid], "readers": pool.pids, **self.other_pids}
        meter = CpuMeter(pids)
        sent_at = 0.0
        for seq in range(args.publishes):
            pause = sent_at + args.interval - time.perf_counter()
            if pause > 0:
                time.sleep(pause)  # pacing of the publisher, not a wait for a condition
            sent_at = time.perf_counter()
            event = Published(seq, time.time_ns())
            system.publish(http, event.sent_ns, seq)
            result.published.append(event)
            deadline = time.monotonic() + args.delivery_timeout
            while pool.count(event.sent_ns) < result.connected and time.monotonic() < deadline:
                time.sleep(POLL)
            self.alive()
        result.cpu, result.cpu_wall = meter.stop()
        result.reader_cpu_seconds = pool.status()["cpu_seconds"]
        result.rss_after = rss_bytes(system.pid)
        latencies = pool.latencies([p.sent_ns for p in result.published])
        for event in result.published:
            event.latencies = latencies[event.sent_ns]

    def _wait(
        self,
        pool: ReaderPool,
        done: Callable[[dict[str, Any]], bool],
        timeout: float,
        what: str,
        progress: bool = False,
    ) -> dict[str, Any]:
        """The readers' status once `done` says so, or at the deadline, or when nothing
        has changed for 30 s.
        """
        deadline = time.monotonic() + timeout
        shown = changed = time.monotonic()
        last: tuple[int, ...] = ()
        while True:
            status = pool.status()
            counts = (status["connected"], status["failed"], status["got_any"])
            if counts != last:
                last, changed = counts, time.monotonic()
            if done(status):
                return status
            now = time.monotonic()
            if now > deadline or now - changed > 30:
                self.say(f"gave up waiting for {what}: {status['connected']:,} connected")
                return status
            if progress and now - shown > 5:
                shown = now
                self.say(f"{status['connected']:,} connected, {status['failed']:,} failed")
            self.alive()
            time.sleep(0.1)

    def _probe_until(
        self, pool: ReaderPool, http: httpx.Client, readers: int, deadline: float
    ) -> None:
        """Publish probe events until `readers` readers have received at least one: another
        whenever the count has not grown for PROBE_WAIT seconds.
        """
        sent = changed = time.monotonic()
        self.system.publish(http, time.time_ns(), -1)
        got = 0
        while (now := time.monotonic()) < deadline:
            count = pool.status()["got_any"]
            if count >= readers:
                return
            if count != got:
                got, changed = count, now
            if now - max(changed, sent) > PROBE_WAIT:
                sent = now
                self.system.publish(http, time.time_ns(), -1)
            self.alive()
            time.sleep(0.05)
        text = f"{readers - got:,} readers had no event by the deadline"
        (self.result.errors if self.system.strict else self.result.findings).append(text)
