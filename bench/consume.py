"""Consuming: how fast one subscription session receives and commits stored events, and
how long an event takes from its producer to a streaming consumer.

Phases, on one isolated Streamsite (its own redis-server and Daphne processes):
  prepublish  --events 1 KB events POSTed through the API, in batches of 1000
  direct      the limit: redis-py XREADGROUP (COUNT --batch-limit, every partition) + XACK
  api         one session of a new subscription (read_from begin) over NDJSON, committing
              asynchronously, until every stored event is committed
  commits     one session is sent events in batches of one; they are committed one request
              at a time (one cursor, or every partition's), against the same request refused
              before any commit work (bench/commits.py)
  latency     a producer at --rate events/s (--publish-batch per request) while one session
              streams with batch_limit --latency-batch-limit; sent_ns in each event → receipt
Targets: api ≥ half the direct rate; p99 publish-to-delivery under 20 ms at 1,000 events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from rich.console import Console

from bench.backlog import prepublish, setup, stored, whole_batches
from bench.cli import (
    add_run_arguments,
    choices,
    option,
    positive,
    run_in_world,
    warn_if_busy,
    write_results,
)
from bench.commits import CommitRun, measure_commits, render_commits
from bench.common import RESULTS_DIR, BenchError, World, compact_aof, exit_on_sigterm
from bench.consume_report import render_latency, render_throughput, report
from bench.consumers import Consumed, SubscriptionReader, consumer_http, drain_direct, subscribe
from bench.cpu import CpuMeter
from bench.latency import Latency, measure_latency
from streamsite.processes import default_server_count

HELP = "events/s one subscription session receives and commits; publish-to-delivery latency"
PHASES = ("throughput", "commits", "latency")
console = Console(highlight=False, width=None if sys.stdout.isatty() else 164)


# -- Throughput ---------------------------------------------------------------------------


def check_complete(consumed: Consumed, total: int, newest: dict[int, str]) -> None:
    """Every stored event received and committed once, up to each partition's newest."""
    if consumed.events != total or consumed.committed != total:
        consumed.errors.append(
            f"{consumed.path}: {total} stored, {consumed.events} received, "
            f"{consumed.committed} committed"
        )
    if consumed.last_offsets != newest:
        consumed.errors.append(f"{consumed.path}: ended at {consumed.last_offsets}, not {newest}")
    if consumed.path == "api" and consumed.server_offsets != newest:
        consumed.errors.append(f"api: the server's cursors are {consumed.server_offsets}")


async def measure_api(
    world: World, token: str, args: argparse.Namespace, total: int, pids: dict[str, list[int]]
) -> Consumed:
    """One session of a new subscription (read_from begin) until all is committed."""
    params = {
        "batch_limit": args.batch_limit,
        "max_uncommitted_events": args.max_uncommitted,
        "batch_flush_timeout": 1,
    }
    consumed = Consumed("api")
    async with consumer_http(world.server_url, token) as http:
        subscription = await subscribe(http, "begin")
        reader = SubscriptionReader(
            http,
            subscription,
            params,
            consumed,
            target=total,
            commit_interval=args.commit_interval / 1000,
        )
        meter = CpuMeter(pids)
        await reader.run(max_seconds=max(120.0, total / 500))
        consumed.cpu, consumed.cpu_wall = meter.stop()
        # The server's own record of the position: every partition committed to its end.
        response = await http.get(f"/api/subscriptions/{subscription}/cursors")
        if response.status_code != 200:
            consumed.errors.append(f"cursors: HTTP {response.status_code}: {response.text[:300]}")
        else:
            consumed.server_offsets = {
                int(item["partition"]): item["offset"] for item in response.json()["items"]
            }
    return consumed


def measure_direct(
    world: World, stream: str, args: argparse.Namespace, total: int, pids: dict[str, list[int]]
) -> Consumed:
    """The limit: redis-py XREADGROUP + XACK over the same stored events."""
    meter = CpuMeter(pids)
    consumed = drain_direct(world.redis_url, stream, args.partitions, total, args.batch_limit)
    consumed.cpu, consumed.cpu_wall = meter.stop()
    return consumed


async def measure(
    world: World, tokens: dict[str, str], stream: str, args: argparse.Namespace
) -> tuple[list[Consumed], list[CommitRun], Latency | None]:
    pids = {
        "daphne": [server.pid for server in world.server_processes],
        "redis": [world.redis_process.pid],
    }
    phases: list[Consumed] = []
    if "throughput" in args.phases:
        total = whole_batches(args)
        console.print(f"[dim]publishing {total:,} events through the API[/]")
        await prepublish(world, tokens["producer"], args, total)
        stored_events, newest = stored(world.redis_url, stream, args.partitions)
        if stored_events != total:
            raise BenchError(f"{total} events published, {stored_events} stored")
        with redis.Redis.from_url(world.redis_url) as client:
            compact_aof(client)
        console.print("[dim]direct: XREADGROUP + XACK[/]")
        phases.append(measure_direct(world, stream, args, total, pids))
        console.print("[dim]api: one subscription session, committing asynchronously[/]")
        phases.append(await measure_api(world, tokens["consumer"], args, total, pids))
        for phase in phases:
            check_complete(phase, total, newest)
        world.check_alive()
    commits: list[CommitRun] = []
    if "commits" in args.phases:
        console.print("[dim]commits: one request in flight, each kind in turn[/]")
        commits = await measure_commits(world, tokens, args, pids)
        world.check_alive()
    latency = None
    if "latency" in args.phases:
        console.print(
            f"[dim]latency: {args.rate:,} events/s for {args.latency_warmup:g} + "
            f"{args.latency_seconds:g} s[/]"
        )
        latency = await measure_latency(world, tokens, args, pids)
        world.check_alive()
    return phases, commits, latency


# -- The command --------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    def add(name: str, kind: Any, default: Any, text: str) -> None:
        option(parser, name, kind, default, text)

    add("--events", positive(int), 200_000, "events stored, then consumed by each path")
    add("--partitions", positive(int), 4, "of the event type")
    add("--event-bytes", positive(int), 1024, "size of each event's JSON as published")
    add("--batch-limit", positive(int), 1000, "events per batch (api) / COUNT (direct)")
    add("--max-uncommitted", positive(int), 20_000, "the stream's max_uncommitted_events")
    parser.add_argument(
        "--commit-interval",
        type=float,
        default=0.0,
        help="ms from one commit's start to the next's, at least; 0: commit as soon as the "
        "previous commit is answered (default: %(default)s)",
    )
    add("--commit-requests", positive(int), 1000, "requests of each kind in the commits phase")
    add("--rate", positive(int), 1000, "events/s the latency producer publishes")
    add("--publish-batch", positive(int), 10, "events per request of the latency producer")
    add("--latency-batch-limit", positive(int), 1, "batch_limit of the latency stream")
    add("--latency-seconds", positive(float), 10.0, "measured time of the latency phase")
    add("--latency-warmup", positive(float), 2.0, "unmeasured time before it")
    add("--servers", positive(int), default_server_count(), "server processes")
    add(
        "--phases",
        choices(PHASES, "phases"),
        ",".join(PHASES),
        "comma-separated, of throughput, commits, latency",
    )
    add_run_arguments(
        parser,
        "consume",
        quick="20,000 events, 100 commit requests of each kind, 2 s of latency after 0.5 s",
    )


def main(args: argparse.Namespace) -> int:
    """Run the benchmark; 0 when it ran cleanly (whether or not it met the targets)."""
    if args.quick:
        args.events, args.latency_seconds, args.latency_warmup = 20_000, 2.0, 0.5
        args.commit_requests = 100
    output: Path | None = args.output or (None if args.quick else RESULTS_DIR / "consume.json")
    exit_on_sigterm()
    started_at = datetime.now(UTC)
    console.print(
        "[bold]Streamsite consume benchmark[/] — the benchmark client, daphne and "
        "redis-server share this machine's CPUs"
    )

    def run(world: World) -> tuple[list[Consumed], list[CommitRun], Latency | None]:
        tokens, stream = setup(world, args.partitions)
        return asyncio.run(measure(world, tokens, stream, args))

    ran = run_in_world(args, console, run)
    if isinstance(ran, int):
        return ran
    (phases, commits, latency), machine, server_problems = ran
    results = report(phases, commits, latency, machine, args, started_at, server_problems)
    if phases:
        console.print(render_throughput(phases, args))
    if commits:
        console.print(render_commits(commits))
    if latency is not None:
        console.print(render_latency(latency))
        cpu = ", ".join(f"{k} {latency.cpu_percent(k):.0f}%" for k in latency.cpu)
        console.print(f"[dim]CPU during the latency phase, in % of one core: {cpu}[/]")
    console.print(
        "[dim]events/s: events committed (api: cursor commits answered 204/200; direct: "
        "XACK replies) per second, from the first request to the last commit; MB/s: bytes "
        "received (api: the NDJSON body; direct: the event values); µs/ev: CPU time that "
        "process spent per event; delivery: time from the producer's time.time_ns() in the "
        "event to the arrival of its batch's bytes here; producer lag: how late each "
        f"request left after its tick ({started_at:%Y-%m-%d %H:%M} UTC, "
        f"{machine['cpu_model']}).[/]"
    )
    shares = [p.cpu_percent("other") for p in phases]
    shares += [latency.cpu_percent("other")] if latency is not None else []
    warn_if_busy(console, shares)
    for target in results["targets"]:
        verdict = "[green bold]PASS[/]" if target["pass"] else "[red bold]FAIL[/]"
        measured = "n/a" if target["measured"] is None else f"{target['measured']:.2f}"
        console.print(f"{verdict} target: {target['description']} — measured {measured}")
    errors = [e for phase in phases for e in phase.errors] + server_problems
    errors += latency.errors if latency is not None else []
    for problem in errors:
        console.print(f"[red]error: {problem}[/]")
    return write_results(console, results, errors, output)


if __name__ == "__main__":  # python -m bench.consume
    from bench.__main__ import main as bench_main

    sys.exit(bench_main(["consume", *sys.argv[1:]]))
