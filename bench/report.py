"""The publish benchmark's report: the table printed, and the results file written."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.table import Table

from bench.common import percentile
from bench.results import fmt, redis_setup, rounded, run_facts, shared_cpus_note

if TYPE_CHECKING:
    from bench.publish import Phase

TARGET_BATCH = 1000
TARGET_RATIO = 0.5
CPU_COLUMNS = ("daphne", "redis", "bench", "kernel", "other")


def ratio(phases: Sequence[Phase], batch_size: int) -> float | None:
    rates = {p.path: p.events_per_second for p in phases if p.batch_size == batch_size}
    if "api" not in rates or not rates.get("direct"):
        return None
    return rates["api"] / rates["direct"]


def render(phases: Sequence[Phase], args: argparse.Namespace) -> Table:
    table = Table(
        title=f"Publishing {args.event_bytes}-byte events: {args.producers} "
        f"producers, {args.partitions} partitions, {args.seconds} s each"
    )
    columns = [
        "batch",
        "path",
        "events/s",
        "MB/s",
        "p50 ms",
        "p99 ms",
        "daphne µs/ev",
        "redis µs/ev",
        *(f"CPU% {name}" for name in CPU_COLUMNS),
        "api/direct",
    ]
    for column in columns:
        table.add_column(column, justify="left" if column == "path" else "right")
    for phase in phases:
        r = ratio(phases, phase.batch_size) if phase.path == "api" else None
        table.add_row(
            str(phase.batch_size),
            phase.path,
            f"{phase.events_per_second:,.0f}",
            f"{phase.mb_per_second:,.1f}",
            fmt(1000 * percentile(phase.latencies, 50)),
            fmt(1000 * percentile(phase.latencies, 99)),
            fmt(phase.cpu_per_event("daphne") if phase.path == "api" else math.nan, 1),
            fmt(phase.cpu_per_event("redis"), 1),
            *(fmt(phase.cpu_percent(name), 0) for name in CPU_COLUMNS),
            f"{r:.2f}" if r is not None else "",
            end_section=phase.path == args.paths[-1],
        )
    return table


def report(
    phases: Sequence[Phase],
    machine: dict[str, Any],
    args: argparse.Namespace,
    started_at: datetime,
    server_problems: list[str],
) -> dict[str, Any]:
    target_ratio = ratio(phases, TARGET_BATCH)
    passed = target_ratio is not None and target_ratio >= TARGET_RATIO
    return {
        **run_facts("publish", started_at, machine),
        "parameters": {
            "event_bytes": args.event_bytes,
            "batch_sizes": args.batch_sizes,
            "producers": args.producers,
            "partitions": args.partitions,
            "seconds": args.seconds,
            "warmup_seconds": args.warmup,
            "paths": args.paths,
            "event_type": {
                "category": "business",
                "compatibility_mode": "compatible",
                "partition_strategy": "random",
                "enrichment": True,
            },
            "redis": redis_setup(args.aof),
            "server": f"{args.servers} daphne process(es) sharing one socket on 127.0.0.1, "
            "as manage.py up runs them; SQLite database, DEBUG off",
            "client": "httpx.AsyncClient (HTTP/1.1 keep-alive) and redis.asyncio (hiredis), "
            "one asyncio loop in the benchmark process",
            "quick": args.quick,
        },
        "results": [phase.as_json() for phase in phases],
        "server_log_problems": server_problems,
        "api_to_direct": {str(b): rounded(ratio(phases, b)) for b in args.batch_sizes},
        "target": {
            "description": f"at batch {TARGET_BATCH} the API reaches at least "
            f"{TARGET_RATIO:.0%} of the direct-Redis rate",
            "ratio": rounded(target_ratio),
            "pass": passed,
        },
        "notes": shared_cpus_note(machine),
    }
