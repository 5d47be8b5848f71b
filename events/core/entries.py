"""The entries of a partition's log as Redis holds them, and as a session reads them: their
fields and their parsing. Pure; `events/store/keys.py` has the keys they live under.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

# A log entry's fields: b"e" the encoded event; b"r" the one subscription a replayed dead
# letter is for (see events/catalog/dead_letters.py); b"k" a compacted type's event's
# compaction key (events/store/compaction.py, whose scripts write it).
EVENT = b"e"
REPLAY_FOR = b"r"
COMPACTION_KEY = b"k"
Fields = dict[bytes, bytes]
Keep = Callable[[Fields], bool]  # whether a subscription delivers an entry

# A dead letter set aside on its partition, until the dead_letters job stores it: the
# offset it had, its deliveries, why it died, and the entry's own fields.
DEAD_OFFSET = b"o"
DEAD_DELIVERIES = b"n"
DEAD_REASON = b"why"

# (offset, encoded event) of a log entry; the event is None when the subscription does not
# deliver it (its topic filter, or a replay for another subscription): it is skipped, but
# still advances the subscription.
Entry = tuple[str, bytes | None]


def entries_of(raw: Iterable[Any], keep: Keep | None) -> list[Entry]:
    """The entries of an XREADGROUP/XAUTOCLAIM/XCLAIM reply."""
    out: list[Entry] = []
    for entry_id, fields in raw:
        if not fields:  # deleted meanwhile: nothing to deliver
            continue
        values = (
            fields
            if isinstance(fields, dict)
            else dict(zip(fields[::2], fields[1::2], strict=True))
        )
        kept = keep is None or keep(values)
        out.append((entry_id.decode(), values[EVENT] if kept else None))
    return out
