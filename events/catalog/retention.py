"""What the retention job keeps of each event type: the limits its partitions are trimmed
to, and which partitions are compacted (events/store/compaction.py) rather than only
trimmed (events/store/partitions.py).
"""

from __future__ import annotations

from events.core.metadata import COMPACTED
from events.core.publishing import Retention
from events.models import EventType
from events.store.compaction import CompactionTarget
from events.store.partitions import RetentionTarget

_FIELDS = ["store_id", "partition_count", "cleanup_policy"]
_FIELDS += ["retention_max_events", "retention_time_ms"]


def retention(event_type: EventType) -> Retention:
    """The limits a type's partitions are trimmed to; `compact` keeps its events for good
    (but for compaction), whatever its retention time says.
    """
    if event_type.cleanup_policy == "compact":
        return Retention(0, 0)
    return Retention(event_type.retention_max_events or 0, event_type.retention_time_ms or 0)


def retention_targets() -> list[RetentionTarget]:
    """Every partition of a `delete` type that has a retention limit, with its limits (the
    retention job; compacted ones are `compaction_targets`)."""
    out: list[RetentionTarget] = []
    for row in EventType.objects.filter(cleanup_policy="delete").only(*_FIELDS):
        limits = retention(row)
        if limits != Retention(0, 0):
            out += [(row.store_id, p, *_positive(limits)) for p in range(row.partition_count)]
    return out


def compaction_targets() -> list[CompactionTarget]:
    """Every partition of a compacted type, with its retention limits (the retention job)."""
    out: list[CompactionTarget] = []
    for row in EventType.objects.filter(cleanup_policy__in=COMPACTED).only(*_FIELDS):
        limits = _positive(retention(row))
        out += [(row.store_id, p, *limits) for p in range(row.partition_count)]
    return out


def _positive(limits: Retention) -> tuple[int, int]:
    return max(limits.max_events, 0), max(limits.max_age_ms, 0)
