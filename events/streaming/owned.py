"""A partition a stream session holds: its lease, and what the session has read, sent and
seen committed of it. Membership (`events/streaming/ordered_session.py`) takes, hands over and drops
it; batching (`events/streaming/batcher.py`) fills it from Redis and sends what it holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from events.core.plan import Partition
from events.store.keys import log_key
from events.store.leases import Lease


@dataclass
class Owned:
    """A partition this session holds, and what it has read, sent and seen committed."""

    partition: Partition
    lease: Lease
    committed: tuple[int, int]
    sent: str
    claim_from: str | None = "0-0"  # pending entries of earlier owners come first
    buffer: list[tuple[str, bytes]] = field(default_factory=list)
    ready: list[list[tuple[str, bytes]]] = field(default_factory=list)
    tail: str | None = None  # the last entry read, when it and those before it are skipped
    skipped: list[str] = field(default_factory=list)  # shared mode: skipped, to be acked
    # Sent, not committed (acked): position -> the number of the batch it went in, in order.
    unacked: dict[tuple[int, int], int] = field(default_factory=dict)
    flush_due: float = 0.0
    keepalives: int = 0  # empty batches in a row
    more: bool = True  # the last read may have left entries behind
    releasing: bool = False
    commit_clock: float = 0.0  # when its commit timeout started counting
    valid_until: float = 0.0  # the lease holds at least until then (loop time)

    @property
    def key(self) -> str:
        return log_key(self.partition.store_id, self.partition.partition)

    def on_entries(self) -> None:
        """The hub's wake-up: the partition has new entries."""
        self.more = True
