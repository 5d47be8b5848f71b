"""Publishing throughput: 1 KB business events POSTed through the REST API by concurrent
producers, against the same events written straight to Redis (pipelined XADD: the limit).

Paths measured for each batch size, one after another on a clean keyspace:
  api     POST /api/event-types/{name}/events through Daphne (validate, enrich, Lua append)
  lua     the API's own Lua append script called directly from here (no HTTP, no Django)
  direct  one pipelined XADD per event, one pipeline per batch (the limit)
Target: at batch 1000 the API reaches at least half of the direct rate.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis
import redis.asyncio as aioredis
from rich.console import Console

from bench.cli import (
    add_run_arguments,
    choices,
    option,
    positive,
    run_in_world,
    warn_if_busy,
    write_results,
)
from bench.common import (
    RESULTS_DIR,
    World,
    compact_aof,
    exit_on_sigterm,
    percentile_ms,
    wait_for_aof_rewrite,
)
from bench.cpu import CpuMeter, CpuUse
from bench.report import render, report
from bench.results import rounded
from bench.senders import Send, api_sender, direct_sender, lua_sender
from bench.workload import EVENT_TYPE, EventSource, create_event_type, event_type_body
from events.core.entries import EVENT
from events.store.keys import log_key
from streamsite.processes import default_server_count

HELP = "events/s through the REST API against pipelined XADD straight to Redis"
PATHS = ("api", "lua", "direct")
MB = 1_000_000
CPU_PER_EVENT = ("daphne", "redis", "bench")  # processes whose CPU per event is reported

# Wide enough for the table when the output is a file or a pipe (CI logs, the README).
console = Console(highlight=False, width=None if sys.stdout.isatty() else 164)


# -- Measuring ----------------------------------------------------------------------------


@dataclass
class Phase(CpuUse):
    """What one (path, batch size) run measured."""

    path: str
    batch_size: int
    latencies: list[float] = field(default_factory=list)  # seconds, one per batch
    events: int = 0
    bytes: int = 0
    started: float = 0.0
    finished: float = 0.0
    errors: list[str] = field(default_factory=list)
    stored_events: int = 0  # acknowledged during warm-up and measurement
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds of each process …
    cpu_wall: float = 0.0  # … over this many seconds of wall time

    @property
    def seconds(self) -> float:
        return max(self.finished - self.started, 1e-9)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds

    @property
    def mb_per_second(self) -> float:
        return self.bytes / self.seconds / MB

    def cpu_per_event(self, process: str) -> float:
        """CPU microseconds `process` spent per event: independent of other load."""
        return 1e6 * self.cpu.get(process, math.nan) / self.events if self.events else math.nan

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "batch_size": self.batch_size,
            "batches": len(self.latencies),
            "events": self.events,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events_per_second, 1),
            "mb_per_second": round(self.mb_per_second, 2),
            "latency_ms": {
                "p50": percentile_ms(self.latencies, 50),
                "p99": percentile_ms(self.latencies, 99),
                "max": percentile_ms(self.latencies, 100),
            },
            "cpu_percent": {k: rounded(self.cpu_percent(k), 1) for k in self.cpu},
            "cpu_us_per_event": {
                k: rounded(self.cpu_per_event(k), 2) for k in CPU_PER_EVENT if k in self.cpu
            },
            "errors": self.errors,
        }


async def _produce(send: Send, phase: Phase, batch_size: int, until: float, record: bool) -> None:
    """One producer: send batches back to back until `until`; stop at the first error."""
    while time.perf_counter() < until:
        started = time.perf_counter()
        try:
            events, size = await send(batch_size)
        except Exception as error:  # any failure ends this producer and fails the run
            phase.errors.append(f"{type(error).__name__}: {error}"[:500])
            return
        finished = time.perf_counter()
        phase.stored_events += events
        if record:
            phase.latencies.append(finished - started)
            phase.events += events
            phase.bytes += size
            phase.finished = max(phase.finished, finished)


async def run_phase(
    send: Send,
    path: str,
    batch_size: int,
    *,
    producers: int,
    seconds: float,
    warmup: float,
    pids: dict[str, list[int]],
) -> Phase:
    """Warm up, then run `producers` concurrent producers for `seconds`."""
    phase = Phase(path, batch_size)
    until = time.perf_counter() + warmup
    await asyncio.gather(
        *(_produce(send, phase, batch_size, until, False) for _ in range(producers))
    )
    if phase.errors:
        return phase
    meter = CpuMeter(pids)
    phase.started = time.perf_counter()
    until = phase.started + seconds
    # The deadline bounds the run even if a request hangs: it is cancelled and counted.
    try:
        await asyncio.wait_for(
            asyncio.gather(
                *(_produce(send, phase, batch_size, until, True) for _ in range(producers))
            ),
            timeout=seconds + 120,
        )
    except TimeoutError:
        phase.errors.append("a batch took more than 120 s")
    phase.finished = max(phase.finished, phase.started)
    used, phase.cpu_wall = meter.stop()
    # The results file reports process groups, not the busiest process of each.
    phase.cpu = {name: seconds for name, seconds in used.items() if " busiest" not in name}
    return phase


# -- Between phases -----------------------------------------------------------------------


def check_stored(client: redis.Redis, phase: Phase, partitions: int, stream: str) -> None:
    """Every acknowledged event is in the streams, once; API events carry their enrichment."""
    keys = [log_key(stream, p) for p in range(partitions)]
    stored = sum(client.xlen(key) for key in keys)
    if stored != phase.stored_events:
        phase.errors.append(f"{phase.stored_events} events acknowledged but {stored} stored")
    if phase.path != "api":
        return
    for partition, key in enumerate(keys):
        entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(key, count=1)  # type: ignore[assignment]
        for _, fields in entries:
            metadata = orjson.loads(fields[EVENT]).get("metadata", {})
            expected = {
                "event_type": EVENT_TYPE,
                "partition": str(partition),
                "published_by": "bench-producer",
            }
            wrong = {k: metadata.get(k) for k, v in expected.items() if metadata.get(k) != v}
            if wrong or "received_at" not in metadata or "eid" not in metadata:
                phase.errors.append(f"partition {partition}: unexpected metadata {metadata}")


def reset_redis(client: redis.Redis) -> None:
    """An empty keyspace and a compact AOF, so one phase's data does not slow the next."""
    wait_for_aof_rewrite(client)  # Redis may have started one (auto-aof-rewrite-percentage)
    client.flushdb()
    compact_aof(client)


# -- The run ------------------------------------------------------------------------------


def setup_event_type(world: World, partitions: int) -> tuple[str, str]:
    """Create an admin and the producer client, then the event type through the API.

    Returns the producer's token (it may publish to the benchmark's event type only) and
    the type's stream id, which names its Redis keys; every path writes to those.
    """
    tokens = world.django(
        "import json\n"
        "from events.catalog.clients import create_client\n"
        "admin = create_client('bench-admin', is_admin=True)[1]\n"
        f"producer = create_client('bench-producer', publish=[{EVENT_TYPE!r}])[1]\n"
        "print(json.dumps({'admin': admin, 'producer': producer}))\n"
    )
    store_id = create_event_type(world, tokens["admin"], event_type_body(partitions), partitions)
    token: str = tokens["producer"]
    return token, store_id


async def measure(world: World, token: str, stream: str, args: argparse.Namespace) -> list[Phase]:
    source = EventSource(args.event_bytes, args.partitions)
    pids = {
        "daphne": [server.pid for server in world.server_processes],
        "redis": [world.redis_process.pid],
    }
    sync_redis = redis.Redis.from_url(world.redis_url)
    limits = httpx.Limits(max_connections=args.producers, max_keepalive_connections=args.producers)
    http = httpx.AsyncClient(
        base_url=world.server_url,
        limits=limits,
        timeout=httpx.Timeout(120),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    direct = aioredis.Redis.from_url(world.redis_url, max_connections=args.producers)
    senders = {
        "api": api_sender(http, source),
        "lua": lua_sender(direct, source, stream),
        "direct": direct_sender(direct, source, stream),
    }
    phases: list[Phase] = []
    try:
        for batch_size in args.batch_sizes:
            for path in args.paths:
                console.print(
                    f"[dim]batch {batch_size:>5}  {path:<6} "
                    f"{args.producers} producers, {args.seconds} s[/]"
                )
                phase = await run_phase(
                    senders[path],
                    path,
                    batch_size,
                    producers=args.producers,
                    seconds=args.seconds,
                    warmup=args.warmup,
                    pids=pids,
                )
                world.check_alive()
                check_stored(sync_redis, phase, args.partitions, stream)
                reset_redis(sync_redis)
                phases.append(phase)
                for error in phase.errors:
                    console.print(f"[red]  error: {error}[/]")
    finally:
        await http.aclose()
        await direct.aclose()
        sync_redis.close()
    return phases


def add_arguments(parser: argparse.ArgumentParser) -> None:
    option(
        parser, "--seconds", positive(float), 5.0, "measured duration of each (path, batch size)"
    )
    option(parser, "--warmup", positive(float), 1.0, "unmeasured run before each measurement")
    # Each producer is one keep-alive connection, and the kernel hashes connections over
    # the server processes' sockets: with 4, a 3:1 split is common and idles a core.
    option(parser, "--producers", positive(int), 8, "concurrent producers, one connection each")
    option(parser, "--batch-sizes", _int_list, "1,100,1000", "comma-separated events per request")
    option(parser, "--partitions", positive(int), 4, "of the event type")
    option(parser, "--event-bytes", positive(int), 1024, "size of each event's JSON")
    option(
        parser,
        "--paths",
        choices(PATHS, "paths"),
        ",".join(PATHS),
        "comma-separated, of api, lua, direct",
    )
    parser.add_argument(
        "--servers",
        type=positive(int),
        default=default_server_count(),
        help="server processes, as `manage.py up --servers` (default: one per CPU, %(default)s)",
    )
    add_run_arguments(
        parser, "publish", quick="0.5 s per phase, 0.2 s warm-up, at most 2 producers"
    )


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("batch sizes must be positive")
    return values


def main(args: argparse.Namespace) -> int:
    """Run the benchmark; 0 when it ran cleanly (whether or not it met the target)."""
    if args.quick:
        args.seconds, args.warmup, args.producers = 0.5, 0.2, min(args.producers, 2)
    output: Path | None = args.output or (None if args.quick else RESULTS_DIR / "publish.json")
    exit_on_sigterm()
    started_at = datetime.now(UTC)
    cpus = os.cpu_count()
    console.print(
        f"[bold]Streamsite publish benchmark[/] — {cpus} CPUs, shared by the "
        f"benchmark client, daphne and redis-server (the client's CPU is not free)"
    )

    def run(world: World) -> list[Phase]:
        token, stream = setup_event_type(world, args.partitions)
        return asyncio.run(measure(world, token, stream, args))

    ran = run_in_world(args, console, run)
    if isinstance(ran, int):
        return ran
    phases, machine, server_problems = ran
    results = report(phases, machine, args, started_at, server_problems)
    console.print(render(phases, args))
    console.print(
        f"[dim]events/s and MB/s: events acknowledged (HTTP 200 / EXEC reply) per "
        f"second of wall time, MB = 10^6 bytes of event JSON as the producer sent it; "
        f"p50/p99: time per batch round trip with {args.producers} producers in "
        f"flight; µs/ev: CPU time that process spent per event (unlike the rates, "
        f"not skewed by other load); CPU%: of one core during the measurement; "
        f"redis: redis-server with its AOF-rewrite children; kernel: kernel threads; "
        f"other: the rest of the machine ({started_at:%Y-%m-%d %H:%M} UTC, "
        f"{machine['cpu_model']}).[/]"
    )
    warn_if_busy(console, [p.cpu_percent("other") for p in phases if p.cpu])
    target = results["target"]
    verdict = "[green bold]PASS[/]" if target["pass"] else "[red bold]FAIL[/]"
    achieved = "n/a" if target["ratio"] is None else f"{target['ratio']:.2f}"
    console.print(f"{verdict} target: {target['description']} — measured {achieved}")
    errors = [error for phase in phases for error in phase.errors] + server_problems
    for problem in server_problems:
        console.print(f"[red]server log: {problem}[/]")
    return write_results(console, results, errors, output)


if __name__ == "__main__":  # python -m bench.publish
    from bench.__main__ import main as bench_main

    sys.exit(bench_main(["publish", *sys.argv[1:]]))
