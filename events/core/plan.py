"""What a stream session knows of a subscription: its partitions (with the ids their Redis
keys use), its committed cursors when it was loaded, and its settings. Pure values;
`events/catalog/plans.py` loads them from the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from events.core import defaults
from events.core.entries import Keep
from events.core.offsets import Cursor, CursorError, parse_cursor
from events.core.problems import Problem
from events.core.topics import keeper

Position = tuple[str, int]  # (event type name, partition)


@dataclass(frozen=True)
class Partition:
    event_type: str
    store_id: str  # the event type's EventType.store_id, in every Redis key
    partition: int

    @property
    def position(self) -> Position:
        return (self.event_type, self.partition)


@dataclass(frozen=True)
class Plan:
    subscription: str
    mode: str
    commit_timeout: int
    partitions: tuple[Partition, ...]
    offsets: dict[Position, str] = field(default_factory=dict)  # committed, at load time
    max_deliveries: int = defaults.MAX_DELIVERIES
    ack_timeout: int = defaults.ACK_TIMEOUT  # seconds (shared mode)
    topics: tuple[str, ...] = ()  # topic patterns; empty: every event
    # An event delivered max_deliveries times is skipped (acked, counted, not stored)
    # instead of set aside as a dead letter: Nakadi's SKIP_EVENT.
    skip_unprocessable: bool = False

    @property
    def shared(self) -> bool:
        return self.mode == "shared"

    def keep(self) -> Keep:
        """The test of which entries this subscription delivers."""
        return keeper(self.subscription, self.topics)

    @property
    def partition_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for p in self.partitions:
            counts[p.event_type] = max(counts.get(p.event_type, 0), p.partition + 1)
        return counts

    def find(self, position: Position) -> Partition | None:
        for p in self.partitions:
            if p.position == position:
                return p
        return None

    def parse_cursor(self, item: object) -> Cursor:
        """A cursor on one of this subscription's partitions; 422 otherwise."""
        try:
            return parse_cursor(item, self.partition_counts)
        except CursorError as error:
            raise Problem(422, f"Invalid cursor: {error}.") from None
