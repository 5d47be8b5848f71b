"""Offsets and cursors: pure functions, no I/O.

An offset is a Redis stream entry id `<ms>-<seq>`, or Nakadi's `BEGIN` (before the first
event). Offsets compare as number pairs, never as strings: "9-0" comes before "10-0".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

BEGIN = "BEGIN"
_ENTRY_ID = re.compile(r"(0|[1-9][0-9]{0,19})-(0|[1-9][0-9]{0,19})")
_MAX = 2**64 - 1


class CursorError(ValueError):
    """A cursor or offset that cannot be used; the message says why, for the client."""


def parse_offset(offset: Any) -> tuple[int, int]:
    """The (ms, seq) pair of an offset; BEGIN is (0, 0), before every entry."""
    if offset == BEGIN:
        return (0, 0)
    match = _ENTRY_ID.fullmatch(offset) if isinstance(offset, str) else None
    if match is None:
        raise CursorError(
            f"offset {offset!r} is neither BEGIN nor an entry id like 1732000000000-0"
        )
    ms, seq = int(match.group(1)), int(match.group(2))
    if ms > _MAX or seq > _MAX:
        raise CursorError(f"offset {offset!r} is out of range")
    return (ms, seq)


def format_offset(position: tuple[int, int]) -> str:
    return BEGIN if position == (0, 0) else f"{position[0]}-{position[1]}"


def next_offset(offset: str) -> str:
    """The smallest entry id after `offset` (an id `<ms>-<seq>`)."""
    ms, seq = offset.split("-")
    return f"{ms}-{int(seq) + 1}"


def previous_offset(offset: str) -> str:
    """The greatest entry id before `offset` (BEGIN before the first possible one)."""
    ms, seq = parse_offset(offset)
    if seq > 0:
        return format_offset((ms, seq - 1))
    if ms > 0:
        return format_offset((ms - 1, _MAX))
    return BEGIN


@dataclass(frozen=True, order=True)
class Cursor:
    """A position on one partition of one event type."""

    event_type: str
    partition: int
    offset: str

    @property
    def position(self) -> tuple[int, int]:
        return parse_offset(self.offset)

    def as_json(self) -> dict[str, str]:
        return {
            "event_type": self.event_type,
            "partition": str(self.partition),
            "offset": self.offset,
        }


def parse_cursor(item: Any, partitions: Mapping[str, int]) -> Cursor:
    """A cursor from Nakadi's `{event_type, partition, offset}`, checked against the event
    types it may name (name → partition count); CursorError says what is wrong.
    """
    if not isinstance(item, Mapping):
        raise CursorError("a cursor must be an object {event_type, partition, offset}")
    event_type = item.get("event_type")
    if not isinstance(event_type, str) or event_type not in partitions:
        raise CursorError(f"cursor event_type {event_type!r} is not one of {sorted(partitions)}")
    partition = item.get("partition")
    if not isinstance(partition, str) or not re.fullmatch(r"0|[1-9][0-9]{0,8}", partition):
        raise CursorError(f'cursor partition {partition!r} must be a partition id such as "0"')
    if int(partition) >= partitions[event_type]:
        raise CursorError(f"{event_type!r} has no partition {partition}")
    offset = item.get("offset")
    parse_offset(offset)
    return Cursor(event_type, int(partition), str(offset))
