"""The consume benchmark's report: the tables printed, the targets, the results file."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.table import Table

from bench.commits import CommitRun
from bench.consumers import Consumed
from bench.latency import Latency
from bench.results import fmt, redis_setup, rounded, run_facts, shared_cpus_note

TARGET_RATIO = 0.5  # the API's committed events/s over the direct limit's
TARGET_P99_MS = 20.0  # publish-to-delivery p99 …
TARGET_RATE = 1000  # … at this many events/s
# "daphne busiest": the busiest server process (the one serving the session, mostly).
CPU_COLUMNS = ("daphne", "daphne busiest", "redis", "bench", "kernel", "other")
MB = 1_000_000


def ratio(phases: Sequence[Consumed]) -> float | None:
    rates = {p.path: p.events_per_second for p in phases}
    if "api" not in rates or not rates.get("direct"):
        return None
    return rates["api"] / rates["direct"]


def verdicts(phases: Sequence[Consumed], latency: Latency | None) -> list[dict[str, Any]]:
    """One entry per target: what it says, what was measured, whether it passed."""
    measured = ratio(phases)
    p99 = latency.ms(99) if latency is not None else None
    at_rate = latency is not None and latency.rate == TARGET_RATE
    return [
        {
            "description": f"one session receives and commits at least {TARGET_RATIO:.0%} "
            "of the direct-Redis rate",
            "measured": rounded(measured),
            "pass": measured is not None and measured >= TARGET_RATIO,
        },
        {
            "description": f"publish-to-delivery p99 under {TARGET_P99_MS:g} ms at "
            f"{TARGET_RATE:,} events/s",
            "measured": p99,
            "pass": p99 is not None and at_rate and p99 < TARGET_P99_MS,
        },
    ]


def render_throughput(phases: Sequence[Consumed], args: argparse.Namespace) -> Table:
    table = Table(
        title=f"Consuming {max(p.events for p in phases):,} stored {args.event_bytes}-byte events, "
        f"{args.partitions} partitions, batch_limit {args.batch_limit}"
    )
    columns = ["path", "events/s", "MB/s", "commits", "commit p50 ms", "commit p99 ms",
               "daphne µs/ev", "redis µs/ev", "bench µs/ev",
               *(f"CPU% {name}" for name in CPU_COLUMNS), "api/direct"]  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "path" else "right")
    r = ratio(phases)
    for phase in phases:
        commit = phase.commit_ms()
        table.add_row(
            phase.path,
            f"{phase.events_per_second:,.0f}",
            f"{phase.bytes / phase.seconds / MB:,.1f}",
            f"{phase.commits:,}" if phase.path == "api" else "-",
            fmt(commit["p50"]),
            fmt(commit["p99"]),
            fmt(phase.cpu_per_event("daphne") if phase.path == "api" else math.nan, 1),
            fmt(phase.cpu_per_event("redis"), 1),
            fmt(phase.cpu_per_event("bench"), 1),
            *(fmt(phase.cpu_percent(name), 0) for name in CPU_COLUMNS),
            f"{r:.2f}" if r is not None and phase.path == "api" else "",
        )
    return table


def render_latency(latency: Latency) -> Table:
    table = Table(
        title=f"Publish-to-delivery at {latency.rate:,} events/s ({latency.publish_batch} a "
        f"request), batch_limit {latency.batch_limit}, {latency.seconds:g} s"
    )
    columns = ["", "events", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"]
    for column in columns:
        table.add_column(column, justify="left" if not column else "right")
    rows = {
        "delivery": latency.latencies,
        "  of it, after received_at": latency.after_receipt,
        "publish round trip": latency.paced.publish_seconds,
        "commit round trip": latency.consumed.commit_seconds,
        "producer lag": latency.paced.lag_seconds,
    }
    for name, values in rows.items():
        table.add_row(
            name,
            f"{len(values):,}",
            *(fmt(latency.ms(q, values)) for q in (50, 90, 99, 99.9, 100)),
        )
    return table


def throughput_json(phase: Consumed) -> dict[str, Any]:
    return {
        "path": phase.path,
        "events": phase.committed,
        "bytes": phase.bytes,
        "seconds": round(phase.seconds, 3),
        "events_per_second": round(phase.events_per_second, 1),
        "mb_per_second": round(phase.bytes / phase.seconds / MB, 2),
        "first_batch_ms": round(1000 * (phase.first_batch - phase.started), 3),
        "batches": phase.batches,
        "keep_alives": phase.keep_alives,
        "commits": phase.commits,
        "commit_ms": phase.commit_ms(),
        "close_info": phase.close_info,
        "cpu_percent": {k: rounded(phase.cpu_percent(k), 1) for k in phase.cpu},
        "cpu_us_per_event": {
            k: rounded(phase.cpu_per_event(k), 2) for k in ("daphne", "redis", "bench")
        },
        "errors": phase.errors,
    }


def report(
    phases: Sequence[Consumed],
    commits: Sequence[CommitRun],
    latency: Latency | None,
    machine: dict[str, Any],
    args: argparse.Namespace,
    started_at: datetime,
    server_problems: list[str],
) -> dict[str, Any]:
    return {
        **run_facts("consume", started_at, machine),
        "parameters": {
            "events": args.events,
            "event_bytes": args.event_bytes,
            "partitions": args.partitions,
            "batch_limit": args.batch_limit,
            "max_uncommitted_events": args.max_uncommitted,
            "commit_interval_ms": args.commit_interval,
            "rate": args.rate,
            "publish_batch": args.publish_batch,
            "latency_batch_limit": args.latency_batch_limit,
            "latency_seconds": args.latency_seconds,
            "latency_warmup_seconds": args.latency_warmup,
            "redis": redis_setup(args.aof),
            "server": f"{args.servers} daphne process(es) on 127.0.0.1, as manage.py up runs "
            "them; SQLite database, DEBUG off",
            "client": "api: httpx.AsyncClient, one connection streaming NDJSON, another "
            "committing the newest cursor per partition, one commit in flight, coalesced; "
            "direct: redis-py (hiredis), XREADGROUP on all partitions, XACK pipelined with "
            "the next read; latency producer: a process of its own, httpx, open-loop timer",
            "quick": args.quick,
        },
        "throughput": [throughput_json(phase) for phase in phases],
        "api_to_direct": rounded(ratio(phases)),
        "commits": [run.as_json() for run in commits],
        "latency": latency.as_json() if latency is not None else None,
        "targets": verdicts(phases, latency),
        "server_log_problems": server_problems,
        "notes": shared_cpus_note(machine),
    }
