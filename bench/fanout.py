"""Fan-out: N concurrent SSE readers on ONE server process, against django-eventstream.

For each --readers N, in a fresh isolated Streamsite (its own redis-server, SQLite database
and one Daphne process, all on loopback) and, unless --no-peer, django-eventstream (its
Redis option on the same redis-server, db 1; served by one Daphne process of its own):
  readers    N connections held by --workers processes of raw asyncio protocols:
             Streamsite's `GET /api/event-types/bench.fanout/events` (Accept:
             text/event-stream, a client with the read grant), the peer's `GET /events/`
  memory     the server's RSS growth from one reader to N, over N-1, once every reader
             has received an event
  latency    --publishes events, one at a time, each with the publisher's time.time_ns();
             per event the latency to its LAST reader (p50/p99 over the events)
  CPU        the server's CPU time per delivered event while they were published
Targets: 20,000 readers on one process at 16 KB or less each; p99 publish-to-last-reader
under 500 ms with 10,000 readers; ahead of django-eventstream on every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.console import Console

from bench.cli import add_run_arguments, option, positive, run_in_world, warn_if_busy, write_results
from bench.common import RESULTS_DIR, BenchError, World, exit_on_sigterm
from bench.fanout_report import render, report
from bench.fanout_run import Fanout, FanoutRun, System
from bench.peer import Peer, peer_python, peer_versions, start_peer
from bench.sse_readers import raise_open_files_limit
from bench.workload import create_event_type

HELP = "N SSE readers on one server process: memory, latency to the last reader, CPU"
EVENT_TYPE = "bench.fanout"
FD_HEADROOM = 100  # descriptors a server process needs besides its readers' sockets
NOTE = "x" * 100  # the rest of each event's data, the same for both systems
console = Console(highlight=False, width=None if sys.stdout.isatty() else 190)

SCHEMA = {
    "type": "object",
    "required": ["sent_ns", "seq"],
    "properties": {
        "sent_ns": {"type": "integer", "minimum": 0},
        "seq": {"type": "integer"},
        "note": {"type": "string"},
    },
}


def event_type_body() -> dict[str, Any]:
    return {
        "name": EVENT_TYPE,
        "owning_application": "bench",
        "category": "business",
        "enrichment_strategies": ["metadata_enrichment"],
        "partition_strategy": "random",
        "compatibility_mode": "compatible",
        "schema": {"type": "json_schema", "schema": orjson.dumps(SCHEMA).decode()},
        "default_statistic": {
            "messages_per_minute": 60,
            "message_size": 200,
            "read_parallelism": 1,
            "write_parallelism": 1,
        },
    }


def streamsite(world: World) -> System:
    """Streamsite's side: clients, the event type (one partition), its reader endpoint."""
    tokens: dict[str, str] = world.django(
        "import json\n"
        "from events.catalog.clients import create_client\n"
        "admin = create_client('bench-admin', is_admin=True)[1]\n"
        f"producer = create_client('bench-producer', publish=[{EVENT_TYPE!r}])[1]\n"
        f"reader = create_client('bench-reader', read=[{EVENT_TYPE!r}])[1]\n"
        "print(json.dumps({'admin': admin, 'producer': producer, 'reader': reader}))\n"
    )
    create_event_type(world, tokens["admin"], event_type_body(), 1)
    url = f"{world.server_url}/api/event-types/{EVENT_TYPE}/events"
    producer = {
        "Authorization": f"Bearer {tokens['producer']}",
        "Content-Type": "application/json",
    }

    def publish(http: httpx.Client, sent_ns: int, seq: int) -> None:
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        event = {
            "sent_ns": sent_ns,
            "seq": seq,
            "note": NOTE,
            "metadata": {"eid": str(uuid.uuid4()), "occurred_at": now},
        }
        response = http.post(url, content=orjson.dumps([event]), headers=producer)
        if response.status_code != 200:
            raise BenchError(f"publish: HTTP {response.status_code}: {response.text[:300]}")

    host, port = world.server_url.removeprefix("http://").split(":")
    return System(
        name="streamsite",
        host=host,
        port=int(port),
        path=f"/api/event-types/{EVENT_TYPE}/events",
        headers={"Accept": "text/event-stream", "Authorization": f"Bearer {tokens['reader']}"},
        pid=world.server_processes[0].pid,
        publish=publish,
        check=True,
        strict=True,
        source_base=10,
    )


def eventstream(peer: Peer) -> System:
    """django-eventstream's side: readers of channel "bench", events sent by send_event."""

    def publish(http: httpx.Client, sent_ns: int, seq: int) -> None:
        peer.publish(http, orjson.dumps({"sent_ns": sent_ns, "seq": seq, "note": NOTE}))

    return System(
        name="django-eventstream",
        host="127.0.0.1",
        port=peer.port,
        path="/events/",
        headers={"Accept": "text/event-stream"},
        pid=peer.process.pid,
        publish=publish,
        check=False,
        strict=False,
        source_base=20,
    )


def measure(world: World, readers: int, args: argparse.Namespace) -> list[FanoutRun]:
    """Both systems with `readers` readers, one after the other, in `world`."""
    redis = {"redis": [world.redis_process.pid]}
    ours = streamsite(world)
    with contextlib.ExitStack() as stack:
        peer = None
        if args.peer:
            peer = start_peer(
                stack, world.redis_url, world.var_dir, lambda line: console.print(f"[dim]{line}[/]")
            )
        runs = [Fanout(ours, readers, args, redis, console, world.check_alive).run()]
        world.check_alive()
        if peer is not None:
            runs.append(
                Fanout(eventstream(peer), readers, args, redis, console, peer.check_alive).run()
            )
            runs[-1].findings.extend(peer.log_problems())
    return runs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    def add(name: str, kind: Any, default: Any, text: str) -> None:
        option(parser, name, kind, default, text)

    def counts(text: str) -> list[int]:
        try:
            values = [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
        if not values or min(values) < 2:
            raise argparse.ArgumentTypeError(f"each count must be 2 or more: {text!r}")
        return values

    add("--readers", counts, [1000, 10_000, 20_000], "comma-separated reader counts, one run each")
    add("--publishes", positive(int), 20, "measured events per run")
    add("--interval", positive(float), 1.0, "seconds from one measured event to the next, at least")
    add("--workers", positive(int), 2, "reader processes (each its own 127.0.0.x source address)")
    add("--connect-concurrency", positive(int), 32, "readers waiting for their answer, per worker")
    add("--connect-timeout", positive(float), 600.0, "seconds for all readers to connect")
    add("--delivery-timeout", positive(float), 60.0, "seconds for an event to reach every reader")
    parser.add_argument(
        "--peer",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure django-eventstream, with the same readers (default: %(default)s)",
    )
    add_run_arguments(parser, "fanout", quick="200 readers, 5 events 0.2 s apart")


def main(args: argparse.Namespace) -> int:
    """Run the benchmark; 0 when it ran cleanly (whether or not it met the targets)."""
    if args.quick:
        args.readers, args.publishes, args.interval = [200], 5, 0.2
    args.servers = 1  # the benchmark is about what ONE server process holds
    output: Path | None = args.output or (None if args.quick else RESULTS_DIR / "fanout.json")
    exit_on_sigterm()
    started_at = datetime.now(UTC)
    # One server process holds every reader's socket: the open-files limit caps N. Where
    # the hard limit cannot be raised (no CAP_SYS_RESOURCE), N is lowered to fit under it.
    args.open_files_limit = raise_open_files_limit()
    cap = args.open_files_limit - FD_HEADROOM
    if max(args.readers) > cap:
        console.print(
            f"[yellow]open files are limited to {args.open_files_limit:,} a process here (the "
            f"hard limit): runs of more readers are run with {cap:,}[/]"
        )
        args.readers = list(dict.fromkeys(min(n, cap) for n in args.readers))
    console.print(
        "[bold]Streamsite fan-out benchmark[/] — the readers, the servers and redis-server "
        "share this machine's CPUs"
    )
    versions: dict[str, str] = {}
    if args.peer:
        try:
            versions = peer_versions(peer_python(lambda line: console.print(f"[dim]{line}[/]")))
        except BenchError as error:
            console.print(f"[red bold]error:[/] {error}")
            return 1
    runs: list[FanoutRun] = []
    problems: list[str] = []
    machine: dict[str, Any] = {}
    for readers in args.readers:

        def work(world: World, n: int = readers) -> list[FanoutRun]:
            return measure(world, n, args)

        ran = run_in_world(args, console, work)
        if isinstance(ran, int):
            return ran
        done, machine, server_problems = ran
        runs += done
        problems += server_problems
    results = report(runs, machine, versions, args, started_at, problems)
    console.print(render(runs, args))
    console.print(
        "[dim]KB/conn: RSS growth from one reader to all, over the readers added (1 KB = "
        "1,024 bytes); last p50/p99/max: over the events, each event's latency to its last "
        "reader; reader p50/p99: over every delivery; server µs/deliv: the server's CPU time "
        "per event delivered to one reader, while the events were published; CPU% in % of "
        f"one core ({started_at:%Y-%m-%d %H:%M} UTC, {machine.get('cpu_model')}).[/]"
    )
    warn_if_busy(console, [run.cpu_percent("other") for run in runs])
    for run in runs:
        for finding in run.findings[:5]:
            console.print(f"[yellow]{run.system}, {run.readers:,} readers: {finding}[/]")
    for target in results["targets"]:
        verdict = "[green bold]PASS[/]" if target["pass"] else "[red bold]FAIL[/]"
        measured = "" if target["measured"] is None else f" — measured {target['measured']}"
        if target.get("measured_with_readers"):
            measured += f" with {target['measured_with_readers']:,} readers"
        console.print(f"{verdict} target: {target['description']}{measured}")
        for comparison in target.get("comparisons", []):
            if not comparison["ahead"]:
                console.print(f"  [red]behind:[/] {comparison}")
    errors = [e for run in runs for e in run.errors] + problems
    for problem in errors:
        console.print(f"[red]error: {problem}[/]")
    return write_results(console, results, errors, output)


if __name__ == "__main__":  # python -m bench.fanout
    from bench.__main__ import main as bench_main

    sys.exit(bench_main(["fanout", *sys.argv[1:]]))
