"""What the benchmarks' reports share: figures rounded for the results file or formatted for
a table, and the parts of every results file that describe the run rather than measure it.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from bench.common import source_state


def rounded(value: float | None, digits: int = 3) -> float | None:
    """`value` rounded for a results file: None when there is none (None or NaN)."""
    return None if value is None or math.isnan(value) else round(value, digits)


def fmt(value: float | None, digits: int = 2) -> str:
    """`value` for a table cell: "-" when there is none (None or NaN)."""
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def run_facts(benchmark: str, started_at: datetime, machine: dict[str, Any]) -> dict[str, Any]:
    """The first keys of a results file: which benchmark ran when, where, on what source."""
    return {
        "benchmark": benchmark,
        "date": started_at.isoformat(timespec="seconds"),
        "machine": machine,
        "source": source_state(),
    }


def redis_setup(aof: bool) -> str:
    """The redis-server the run used, for the parameters."""
    return "own redis-server on 127.0.0.1, " + (
        "appendonly yes, appendfsync everysec" if aof else "appendonly no"
    )


def shared_cpus_note(machine: dict[str, Any]) -> str:
    """The notes of a results file: the client's CPU is not free."""
    return (
        "The benchmark client, daphne and redis-server share this machine's "
        f"{machine['cpu_count']} CPUs."
    )
