"""The chaos suite's verdict, from the files its processes wrote, and its report.

- lost: events the producer was answered 200 for that no consumer recorded;
- duplicates: events recorded more than once, each put down to the last fault before its
  second record, and bounded by what can be uncommitted at the faults;
- order: per key, the first records of the confirmed events in the order they were made
  (time, then place in the batch) have increasing sequence numbers.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

EXAMPLES = 10  # how many of each problem the results name


def read_lines(paths: Iterable[Path]) -> tuple[list[dict[str, Any]], int]:
    """Every JSON line of the files, and how many lines were not JSON (a line cut short by
    a SIGKILL: its batch was never committed, so it comes again).
    """
    records: list[dict[str, Any]] = []
    broken = 0
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                broken += 1
    return records, broken


def fault_before(faults: Sequence[dict[str, Any]], moment: float) -> str:
    """The name of the last fault that began before `moment` (seconds since the start)."""
    name = "none"
    for fault in faults:
        if fault["at"] <= moment:
            name = f"{fault['kind']} {fault['target']}"
    return name


def verdict(
    published: list[dict[str, Any]],
    unconfirmed: list[dict[str, Any]],
    deliveries: list[dict[str, Any]],
    faults: Sequence[dict[str, Any]],
    *,
    started: float,
    duplicate_bound: int,
) -> dict[str, Any]:
    """Counts and checks; `started` is the run's start (time.time()), from which the
    faults' `at` are counted.
    """
    confirmed = {event["eid"]: event for event in published}
    known = confirmed.keys() | {event["eid"] for event in unconfirmed}
    ordered = sorted(deliveries, key=lambda r: (r["time"], r["consumer"], r["index"]))
    times = Counter(record["eid"] for record in ordered)
    first: dict[str, dict[str, Any]] = {}
    second: dict[str, dict[str, Any]] = {}
    for record in ordered:
        if record["eid"] not in first:
            first[record["eid"]] = record
        elif record["eid"] not in second:
            second[record["eid"]] = record

    lost = [eid for eid in confirmed if eid not in first]
    unexpected = sorted(eid for eid in first if eid not in known)
    duplicated = sorted(eid for eid, count in times.items() if count > 1)
    by_fault: Counter[str] = Counter(
        fault_before(faults, second[eid]["time"] - started) for eid in duplicated
    )
    mismatched = [
        eid
        for eid, record in first.items()
        if eid in confirmed
        and (record["key"], record["seq"]) != (confirmed[eid]["key"], confirmed[eid]["seq"])
    ]

    per_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for eid, record in first.items():
        if eid in confirmed:
            per_key[record["key"]].append(record)
    out_of_order = []
    for key, records in per_key.items():
        records.sort(key=lambda r: (r["time"], r["consumer"], r["index"]))
        for before, after in itertools.pairwise(records):
            if after["seq"] <= before["seq"]:
                out_of_order.append({"key": key, "before": before, "after": after})
    partitions_of_key = {k: {r["partition"] for r in rs} for k, rs in per_key.items()}
    split_keys = sorted(k for k, parts in partitions_of_key.items() if len(parts) > 1)

    pauses = {}  # per partition: its longest time without a record, and the fault before
    for partition in sorted({r["partition"] for r in ordered}):
        moments = [r["time"] for r in ordered if r["partition"] == partition]
        gap, at = max(((b - a, a) for a, b in itertools.pairwise(moments)), default=(0.0, 0.0))
        pauses[partition] = {
            "seconds": round(gap, 1),
            "from": round(at - started, 1),
            # A fault's time is taken just before it strikes: allow a second.
            "after": fault_before(faults, at - started + min(gap, 1.0)),
        }

    extra = sum(count - 1 for count in times.values())
    counts = {
        "published": len(confirmed),
        "unconfirmed": len(unconfirmed),
        "delivered": len(deliveries),
        "delivered_distinct": len(first),
        "duplicated": len(duplicated),
        "extra_deliveries": extra,
        "lost": len(lost),
        "unexpected": len(unexpected),
    }
    checks = {
        "none_lost": not lost,
        "order_per_key": not out_of_order and not mismatched,
        "one_partition_per_key": not split_keys,
        "duplicates_bounded": extra <= duplicate_bound,
        "nothing_unexpected": not unexpected,
    }
    return {
        "counts": counts,
        "checks": checks,
        "duplicate_bound": duplicate_bound,
        "duplicates_by_fault": dict(sorted(by_fault.items())),
        "longest_pause_per_partition": pauses,
        "examples": {
            "lost": [confirmed[eid] for eid in lost[:EXAMPLES]],
            "out_of_order": out_of_order[:EXAMPLES],
            "mismatched": mismatched[:EXAMPLES],
            "split_keys": split_keys[:EXAMPLES],
            "unexpected": unexpected[:EXAMPLES],
            "duplicated": [
                {"eid": eid, "times": times[eid], "first": first[eid], "second": second[eid]}
                for eid in duplicated[:EXAMPLES]
            ],
        },
    }


def report(console: Console, results: dict[str, Any]) -> None:
    counts, checks = results["counts"], results["checks"]
    console.print(
        f"published {counts['published']} (unconfirmed {counts['unconfirmed']}), delivered "
        f"{counts['delivered']} ({counts['delivered_distinct']} distinct), duplicated "
        f"{counts['duplicated']} ({counts['extra_deliveries']} extra deliveries, bound "
        f"{results['duplicate_bound']}), lost {counts['lost']}"
    )
    console.print(f"duplicates by the fault before them: {results['duplicates_by_fault']}")
    console.print(f"longest pause of each partition: {results['longest_pause_per_partition']}")
    seconds = results["seconds"]
    console.print(
        f"caught up {seconds['until_caught_up']} s after the producer's start (producing "
        f"{seconds['producing']} s); the whole run {seconds['whole_run']} s; load {results['load']}"
    )
    for name, passed in checks.items():
        console.print(f"  {'[green]pass[/]' if passed else '[red bold]FAIL[/]'} {name}")
    for kind, examples in results["examples"].items():
        if examples and kind != "duplicated":
            console.print(f"[red]{kind}[/]: {json.dumps(examples[:3])}")
