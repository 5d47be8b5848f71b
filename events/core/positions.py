"""A reader's position: where it stands on every partition of every event type it reads,
and its text form, the SSE `id:` (docs/architecture.md#readers). Pure functions.

    r1.<store epoch>.<name>@<store id>=<offset>,<offset>;<name>@<store id>=…

The store epoch names the Redis data set (a Redis that lost its data has a new one); the
store id names the event type's incarnation (one deleted and created again has a new one);
the offsets are one per partition, in partition order, `0-0` before the first entry and
`-` for a partition the stream does not read.
Event type names are dotted words, so the separators `@ = ; ,` never occur in them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from events.core.offsets import CursorError, parse_offset

VERSION = "r1"
START = "0-0"  # before the first entry of a partition
UNREAD = "-"  # a partition the stream does not read
MAX_LENGTH = 8_000  # a browser sends the id back as a header: Daphne takes 16 KB of headers
# in all, common proxies 8 KB

_STORE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}")


class PositionError(ValueError):
    """A position that does not parse; the message says why, for the client."""


@dataclass(frozen=True)
class TypePosition:
    name: str
    store_id: str
    offsets: tuple[str, ...]  # one per partition, in partition order


@dataclass(frozen=True)
class Position:
    epoch: str
    types: tuple[TypePosition, ...]

    def of(self, name: str) -> TypePosition | None:
        return next((t for t in self.types if t.name == name), None)


def longest(types: Sequence[tuple[str, str, int]]) -> int:
    """The longest position of (name, store id, partitions) types: every offset at its
    longest (20 digits of ms, a 1-digit sequence as Redis makes in practice).
    """
    return len(VERSION) + 14 + sum(len(n) + len(s) + 3 + 23 * p for n, s, p in types)


def format_position(epoch: str, types: Sequence[TypePosition]) -> str:
    parts = ";".join(f"{t.name}@{t.store_id}={','.join(t.offsets)}" for t in types)
    return f"{VERSION}.{epoch}.{parts}"


def parse_position(text: str) -> Position:
    if len(text) > MAX_LENGTH:
        raise PositionError("the position is too long")
    version, _, rest = text.partition(".")
    epoch, _, body = rest.partition(".")
    if version != VERSION or not _STORE_ID.fullmatch(epoch) or not body:
        raise PositionError(f"not a position of this server ({VERSION}.<epoch>.<types>)")
    types = []
    for part in body.split(";"):
        head, _, offsets = part.partition("=")
        name, _, store_id = head.rpartition("@")
        if not _NAME.fullmatch(name) or not _STORE_ID.fullmatch(store_id) or not offsets:
            raise PositionError(f"{part[:80]!r} is not <event type>@<store id>=<offsets>")
        values = tuple(offsets.split(","))
        for offset in values:
            if offset == UNREAD:
                continue
            try:
                parse_offset(offset)
            except CursorError as error:
                raise PositionError(str(error)) from None
        types.append(TypePosition(name, store_id, values))
    if len({t.name for t in types}) != len(types):
        raise PositionError("the position names an event type twice")
    return Position(epoch, tuple(types))


def after(offset: str, other: str) -> bool:
    """Whether entry id `offset` comes after `other` (as number pairs, never as strings)."""
    return parse_offset(offset) > parse_offset(other)


# Why a position cannot be honoured exactly: the `reason` of an `event: reset`.
INVALID = "invalid_position"  # it does not parse, or names other types than the URL
RECREATED = "event_type_recreated"  # the type was deleted and created again
TRIMMED = "trimmed"  # retention removed entries after it
DATA_LOST = "data_lost"  # Redis lost entries the reader had (or its whole data set)


def check(offset: str, last: str, trimmed_to: str) -> tuple[str | None, str]:
    """Whether a partition can resume exactly after `offset`, given the newest id its log
    ever had and the newest id trimming removed: (None, offset) if so, else (reason, the
    offset it continues after).
    """
    if after(offset, last):
        return DATA_LOST, last
    if after(trimmed_to, offset):
        return TRIMMED, trimmed_to
    return None, offset
