"""Where a reader starts (docs/architecture.md#readers): at the newest entry (the default),
the oldest, a time, after Nakadi cursors, or after a position it was sent before
(`Last-Event-ID`), and the resets a position that cannot be honoured exactly gets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from events.core import positions
from events.core.offsets import previous_offset
from events.core.positions import UNREAD, Position, PositionError, parse_position
from events.store import tails as tail_store
from events.store.keys import log_key

END = "end"  # resolved once the reader follows the partition: its newest entry then


@dataclass(frozen=True)
class ReadType:
    """An event type a reader reads: a plain snapshot of its row."""

    name: str
    store_id: str
    partition_count: int


@dataclass
class Start:
    """The offset each partition starts after (END: the newest; UNREAD: not read), and the
    resets to announce first: (reason, [(event type, partition)]).
    """

    offsets: dict[tuple[str, int], str]
    resets: list[tuple[str, list[tuple[str, int]]]] = field(default_factory=list)


def everywhere(types: Sequence[ReadType], offset: str) -> dict[tuple[str, int], str]:
    return {(t.name, p): offset for t in types for p in range(t.partition_count)}


def at_time(types: Sequence[ReadType], ms: int) -> dict[tuple[str, int], str]:
    """Start with the first entry stored at or after `ms` (entry ids begin with their time)."""
    return everywhere(types, previous_offset(f"{ms}-0"))


def from_cursors(
    types: Sequence[ReadType], cursors: Mapping[tuple[str, int], str]
) -> dict[tuple[str, int], str]:
    """Nakadi's X-Nakadi-Cursors: only the partitions named, each after its offset."""
    offsets = everywhere(types, UNREAD)
    offsets.update(cursors)
    return offsets


async def resume(
    types: Sequence[ReadType],
    text: str,
    fallback: dict[tuple[str, int], str],
    globbed: bool,
    epoch: str,
) -> Start:
    """After the position `text`; where it cannot be honoured, a reset says why and from
    where the stream goes on: from `fallback` if the position is unusable, from the oldest
    entry of a type created anew or of a Redis that lost its data (`epoch`: the store's
    now), else from the nearest offset the log still has. A stream that names its types by
    glob (`globbed`) reads the types that match now: one that joined since starts at its
    oldest entry.
    """
    try:
        position = parse_position(text)
    except PositionError:
        return Start(fallback, [(positions.INVALID, sorted(fallback))])
    wanted = {t.name for t in types}
    named = {t.name for t in position.types}
    fits = named & wanted if globbed else named == wanted
    if not fits or not _fits(types, position):
        return Start(fallback, [(positions.INVALID, sorted(fallback))])
    if position.epoch != epoch:
        return Start(everywhere(types, positions.START), [(positions.DATA_LOST, [])])
    offsets: dict[tuple[str, int], str] = {}
    reasons: dict[str, list[tuple[str, int]]] = {}
    for t in types:
        held = position.of(t.name)
        if held is None:  # matched the glob since: all it holds is new to the reader
            offsets.update(everywhere([t], positions.START))
            continue
        if held.store_id != t.store_id:
            offsets.update(everywhere([t], positions.START))
            reasons.setdefault(positions.RECREATED, []).extend(
                (t.name, p) for p in range(t.partition_count)
            )
            continue
        for p in range(t.partition_count):  # a partition added since starts at its first entry
            offsets[(t.name, p)] = held.offsets[p] if p < len(held.offsets) else positions.START
    checked = [k for k, offset in offsets.items() if offset != UNREAD]
    found = await tail_store.bounds([_key(types, k) for k in checked])
    for k, bounds in zip(checked, found, strict=True):
        reason, offset = positions.check(offsets[k], bounds.last, bounds.trimmed_to)
        if reason is not None:
            offsets[k] = offset
            reasons.setdefault(reason, []).append(k)
    return Start(offsets, sorted(reasons.items()))


def _fits(types: Sequence[ReadType], position: Position) -> bool:
    """A position with more partitions than a type has names something else."""
    counts = {t.name: t.partition_count for t in types}
    return all(
        len(held.offsets) <= counts[held.name] or held.store_id != _store(types, held.name)
        for held in position.types
        if held.name in counts
    )


def _store(types: Sequence[ReadType], name: str) -> str:
    return next(t.store_id for t in types if t.name == name)


def _key(types: Sequence[ReadType], at: tuple[str, int]) -> str:
    return log_key(_store(types, at[0]), at[1])


async def unavailable(
    types: Sequence[ReadType], cursors: Mapping[tuple[str, int], str]
) -> list[dict[str, str]]:
    """The cursors that cannot be read after exactly: trimmed, or beyond the log's end."""
    named = list(cursors)
    found = await tail_store.bounds([_key(types, k) for k in named])
    return [
        {"event_type": k[0], "partition": str(k[1]), "offset": cursors[k]}
        for k, bounds in zip(named, found, strict=True)
        if positions.check(cursors[k], bounds.last, bounds.trimmed_to)[0] is not None
    ]
