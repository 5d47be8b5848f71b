"""The fan-out benchmark's report: the table printed, the targets, the results file."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.table import Table

from bench.fanout_run import FanoutRun
from bench.results import fmt, redis_setup, rounded, run_facts, shared_cpus_note

KB = 1024  # bytes: the memory target's unit
TARGET_HELD = 20_000  # readers one process holds …
HELD_FLOOR = 19_500  # … or as near as the open-files limit allows (see bench/README.md)
TARGET_KB = 16.0  # … at this much memory each, or less
TARGET_P99_READERS = 10_000  # with this many readers …
TARGET_P99_MS = 500.0  # … p99 publish-to-last-reader under this
OURS, PEER = "streamsite", "django-eventstream"
CPU_COLUMNS = ("server", "readers", "redis", "other")


def kb_per_connection(run: FanoutRun) -> float | None:
    return rounded(run.bytes_per_connection / KB, 2)


def figures(run: FanoutRun) -> dict[str, float | None]:
    """The figures compared with the peer's, each lower-is-better."""
    return {
        "KB per connection": kb_per_connection(run),
        "publish-to-last-reader p50 ms": rounded(run.to_last_ms(50)),
        "publish-to-last-reader p99 ms": rounded(run.to_last_ms(99)),
        "server µs per delivered event": rounded(run.cpu_per_delivery_us(), 2),
    }


def _held(run: FanoutRun) -> bool:
    return run.connected == run.readers and not run.lost and not run.missed


def verdicts(runs: Sequence[FanoutRun]) -> list[dict[str, Any]]:
    """One entry per target: what it says, what was measured, whether it passed."""
    ours = {run.readers: run for run in runs if run.system == OURS}
    peers = {run.readers: run for run in runs if run.system == PEER}
    near = [n for n in ours if HELD_FLOOR <= n <= TARGET_HELD]
    held = ours[max(near)] if near else None
    kb = kb_per_connection(held) if held is not None else None
    p99_run = ours.get(TARGET_P99_READERS)
    p99 = rounded(p99_run.to_last_ms(99)) if p99_run is not None else None
    comparisons = []
    for readers in sorted(ours.keys() & peers.keys()):
        mine, theirs = figures(ours[readers]), figures(peers[readers])
        for name, value in mine.items():
            other = theirs[name]
            # A figure the peer could not produce (readers lost, events missed) is a loss
            # for the peer; one Streamsite could not produce is a loss for Streamsite.
            ahead = value is not None and (other is None or value < other)
            comparisons.append(
                {"readers": readers, "figure": name, OURS: value, PEER: other, "ahead": ahead}
            )
        comparisons.append(
            {
                "readers": readers,
                "figure": "readers held, every event delivered",
                OURS: _held(ours[readers]),
                PEER: _held(peers[readers]),
                "ahead": _held(ours[readers]) or not _held(peers[readers]),
            }
        )
    return [
        {
            "description": f"{TARGET_HELD:,} readers held by one process at {TARGET_KB:g} KB "
            f"({TARGET_KB * KB:,.0f} bytes) or less each",
            "measured": kb,
            "measured_with_readers": held.readers if held is not None else None,
            "pass": held is not None and _held(held) and kb is not None and kb <= TARGET_KB,
        },
        {
            "description": f"p99 publish-to-last-reader under {TARGET_P99_MS:g} ms with "
            f"{TARGET_P99_READERS:,} readers",
            "measured": p99,
            "pass": p99 is not None and p99 < TARGET_P99_MS,
        },
        {
            "description": f"ahead of {PEER} on every figure",
            "measured": None,
            "comparisons": comparisons,
            "pass": bool(comparisons) and all(c["ahead"] for c in comparisons),
        },
    ]


def render(runs: Sequence[FanoutRun], args: argparse.Namespace) -> Table:
    table = Table(
        title=f"Fan-out: SSE readers on one server process, {args.publishes} events "
        f"{args.interval:g} s apart (each once the last reached every reader)"
    )
    columns = [
        "system", "readers", "connected", "connect s", "KB/conn", "RSS MiB",
        "last p50 ms", "last p99 ms", "last max ms", "reader p50 ms", "reader p99 ms",
        "server µs/deliv", *(f"CPU% {name}" for name in CPU_COLUMNS), "missed",
    ]  # fmt: skip
    for column in columns:
        table.add_column(
            column, justify="left" if column == "system" else "right", no_wrap=column == "system"
        )
    for run in runs:
        table.add_row(
            run.system,
            f"{run.readers:,}",
            f"{run.connected:,}",
            fmt(run.connect_seconds, 1),
            fmt(run.bytes_per_connection / KB, 1),
            fmt(run.rss_connected / 2**20, 0),
            fmt(run.to_last_ms(50)),
            fmt(run.to_last_ms(99)),
            fmt(run.to_last_ms(100)),
            fmt(run.reader_ms(50)),
            fmt(run.reader_ms(99)),
            fmt(run.cpu_per_delivery_us(), 1),
            *(fmt(run.cpu_percent(name), 0) for name in CPU_COLUMNS),
            f"{run.missed:,}",
            end_section=run.system == PEER,
        )
    return table


def run_json(run: FanoutRun) -> dict[str, Any]:
    def ms(value: float | None) -> float | None:
        return None if value is None or math.isnan(value) else round(value, 3)

    return {
        "system": run.system,
        "readers": run.readers,
        "connected": run.connected,
        "failed_to_connect": run.failed,
        "lost": run.lost,
        "connect_seconds": rounded(run.connect_seconds, 2),
        "first_event_to_all_seconds": rounded(run.first_event_seconds, 2),
        "rss_bytes": {
            "one_reader": run.rss_baseline,
            "all_readers": run.rss_connected,
            "after_publishes": run.rss_after,
        },
        "kb_per_connection": kb_per_connection(run),
        "publishes": len(run.published),
        "deliveries": run.deliveries,
        "missed_deliveries": run.missed,
        "to_last_reader_ms": {f"p{q:g}": ms(run.to_last_ms(q)) for q in (50, 90, 99)}
        | {"max": ms(run.to_last_ms(100))},
        "per_event_to_last_reader_ms": [ms(p.to_last_ms()) for p in run.published],
        "reader_ms": {f"p{q:g}": ms(run.reader_ms(q)) for q in (50, 90, 99)},
        "server_us_per_delivery": rounded(run.cpu_per_delivery_us(), 2),
        "redis_us_per_delivery": rounded(run.cpu_per_delivery_us("redis"), 3),
        "readers_us_per_delivery": rounded(run.cpu_per_delivery_us("readers"), 2),
        "cpu_percent": {k: round(run.cpu_percent(k), 1) for k in run.cpu},
        "contract_checks": run.checks,
        "findings": run.findings,
        "errors": run.errors,
    }


def report(
    runs: Sequence[FanoutRun],
    machine: dict[str, Any],
    peer_versions: dict[str, str],
    args: argparse.Namespace,
    started_at: datetime,
    server_problems: list[str],
) -> dict[str, Any]:
    return {
        **run_facts("fanout", started_at, machine),
        "parameters": {
            "readers": args.readers,
            "publishes": args.publishes,
            "interval_seconds": args.interval,
            "reader_workers": args.workers,
            "connect_concurrency_per_worker": args.connect_concurrency,
            "open_files_limit": getattr(args, "open_files_limit", None),
            "peer": args.peer,
            "peer_versions": peer_versions,
            "redis": redis_setup(args.aof),
            "server": "one daphne process each, on 127.0.0.1; Streamsite with SQLite and "
            "DEBUG off; the peer as bench/peers/eventstream sets it up",
            "client": "worker processes of raw asyncio protocols (bench/sse_readers.py); "
            "the publisher is httpx in the benchmark process",
            "quick": args.quick,
        },
        "results": [run_json(run) for run in runs],
        "server_log_problems": server_problems,
        "targets": verdicts(runs),
        "notes": shared_cpus_note(machine)
        + " KB per connection: the server's RSS with every reader connected and fed one "
        "event, minus its RSS with one reader, over the readers added. Latency to the last "
        "reader: per event, the latest arrival among all readers, minus the publisher's "
        "time.time_ns() just before its request.",
    }
