"""What the CLI draws: a progress line with rate and errors, and plain tables. Stdlib only."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, TextIO


class Progress:
    """One line on a terminal, redrawn at most ten times a second: a bar when the total
    is known (bytes of a file), the count, the rate and the errors.
    """

    def __init__(self, out: TextIO, total: int | None = None, width: int = 30) -> None:
        self.out, self.total, self.width = out, total, width
        self.started = time.monotonic()
        self._drawn = 0.0

    def update(
        self, done: int, errors: int, position: int | None = None, final: bool = False
    ) -> None:
        now = time.monotonic()
        if not final and now - self._drawn < 0.1:
            return
        self._drawn = now
        rate = done / max(now - self.started, 1e-6)
        bar = ""
        if self.total and position is not None:
            share = min(1.0, position / self.total)
            filled = int(share * self.width)
            bar = f"[{'#' * filled}{'.' * (self.width - filled)}] {share:4.0%} "
        line = f"\r{bar}{done} events  {rate:,.0f}/s  {errors} errors"
        self.out.write(line + ("\n" if final else ""))
        self.out.flush()


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell, numbers to the right."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [
        all(_is_number(r[i]) for r in cells[1:]) and len(cells) > 1 for i in range(len(headers))
    ]
    lines = []
    for row in cells:
        parts = [
            cell.rjust(widths[i]) if numeric[i] else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _is_number(text: str) -> bool:
    return text == "" or text.lstrip("-").replace(".", "", 1).isdigit()


def stats_rows(stats: dict[str, Any]) -> list[list[Any]]:
    """One row per partition of GET /api/subscriptions/{id}/stats."""
    rows = []
    for item in stats.get("items", []):
        for p in item.get("partitions", []):
            rows.append(
                [
                    item.get("event_type", ""),
                    p.get("partition", ""),
                    p.get("state", ""),
                    p.get("stream_id") or "-",
                    p.get("unconsumed_events", ""),
                    p.get("consumer_lag_seconds", ""),
                ]
            )
    return rows


STATS_HEADERS = ("EVENT TYPE", "PARTITION", "STATE", "OWNER (STREAM)", "UNCONSUMED", "LAG S")
