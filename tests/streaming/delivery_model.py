"""A plain-Python model of delivery counting, for the model-based tests: what each event
went through, and what Redis must therefore show (`tests/streaming/delivery_world.py` drives real
sessions and hands the model what happened and what Redis holds).

The rule (README, "What counts as a failed delivery"): a delivery is charged to the events
of one batch per partition when a client fails: the first batch its session sent that it
had not committed (ordered), or the oldest batch it had not acked in full (shared); a drain
charges nothing. The checks:
- every published event is in exactly one of committed (acked), pending for one consumer,
  not yet read, or dead;
- each pending event's Redis delivery count is what the model's charges say;
- an event is dead only once charged `max_deliveries` times, with that many deliveries,
  and never before its `max_deliveries`-th send;
- no event is charged more often than it was sent, except once for an event marked sent
  just before a crash and never written (`window`, the known limit);
- an event charged before is sent in a batch of its own;
- in the end, once a last consumer takes everything, every event is committed (acked) or
  dead: nothing is lost or stuck.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

Batches = list[list[str]]  # a partition's batches, each the offsets it carried


@dataclass
class Event:
    """What the model knows of one published event."""

    partition: int
    sends: int = 0  # times a client received it
    charges: int = 0  # failed deliveries charged to it
    held_charge: bool = False  # ordered: its holder's time ended charged (Redis counts it)
    window: int = 0  # times marked sent and never written (the crash window)
    record: tuple[str, int | None] | None = None  # shared: (session, batch; None: uncharged)
    acked: bool = False  # shared: acked by a client


@dataclass
class Observed:
    """What Redis holds after a step."""

    pending: dict[str, int]  # offset -> delivery count
    dead: dict[str, int]  # offset -> deliveries
    last_read: dict[int, tuple[int, int]]  # partition -> the group's last delivered id
    committed: dict[int, tuple[int, int] | None]  # ordered: partition -> committed offset


@dataclass
class Model:
    shared: bool
    partitions: int
    max_deliveries: int
    events: dict[str, Event] = field(default_factory=dict)
    committed: dict[int, tuple[int, int]] = field(default_factory=dict)
    # Ordered: per partition, the session that took it last (its record of batches is the
    # partition's), and the batches of an owner whose time ended, not yet judged.
    owner: dict[int, str] = field(default_factory=dict)
    unclosed: dict[int, tuple[str, Batches]] = field(default_factory=dict)
    dead: set[str] = field(default_factory=set)  # as Redis said at the last check
    number_of: dict[str, int] = field(default_factory=dict)  # offset -> its last batch
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.committed = dict.fromkeys(range(self.partitions), (0, 0))

    # -- what happened --------------------------------------------------------------------

    def published(self, offset: str, partition: int) -> None:
        self.events[offset] = Event(partition)

    def sent(self, session: str, batch: list[str], written: bool = True) -> None:
        """A batch went to a client (`written`), or was only marked sent as its server died.
        An event charged before goes in a batch of its own.
        """
        if len(batch) > 1:
            assert not any(self.events[o].charges for o in batch), ("not alone", batch)
        number = next(self._numbers)  # batches are numbered in the order sent
        for offset in batch:
            self.number_of[offset] = number
            event = self.events[offset]
            if written:
                event.sends += 1
            else:
                event.window += 1
            if self.shared:
                event.record = (session, number)

    def committed_to(self, partition: int, offset: str) -> None:
        self.committed[partition] = position(offset)

    def acked(self, offset: str, done: bool) -> None:
        """An ack of `offset`: `done` when Redis acked it (else it was not pending)."""
        event = self.events[offset]
        event.record = None
        event.acked = event.acked or done

    def ended(
        self,
        session: str,
        batches: Mapping[int, Batches],
        holding: Iterable[int],
        *,
        charge: bool,
        left: bool,
    ) -> None:
        """A session's time ends on the partitions it still thought it held (`holding`; one
        it handed over or saw lapse is no longer its own), with what its client did not
        commit (ack). Charged, unless the server ended the session (a drain): when the
        session leaves (`left`, it knows), only the batch its client stopped in, its oldest
        not committed on any partition; when it dies (a crash, a lapse), the first on each
        partition (the known limit). Ordered, the charge comes when the next session takes
        the partition (`taken`); shared, with the claims.
        """
        holding = list(holding)
        if self.shared:
            records = [e for e in self.events.values() if e.record and e.record[0] == session]
            if charge and not left:
                return
            failed = min((e.record[1] for e in records if e.record and e.record[1]), default=None)
            for event in records:
                if not charge or event.record != (session, failed):
                    event.record = None
            return
        mine = [p for p in holding if self.owner.get(p) == session]  # else another's record
        # What it sent and its client did not commit; if its lease lapsed (and it has not
        # seen that yet), what it had sent then was recorded.
        sent = {
            p: self.unclosed[p][1]
            if self.unclosed.get(p, ("", []))[0] == session
            else batches.get(p, [])
            for p in mine
        }
        heads = {
            p: waiting[0]
            for p in mine
            if (waiting := [b for b in sent[p] if position(b[-1]) > self.committed[p]])
        }
        failed = min(heads, key=lambda p: self.number_of[heads[p][0]], default=None)
        for partition in mine:
            if not charge or (left and partition != failed):
                self.unclosed.pop(partition, None)
            else:
                self.unclosed[partition] = (session, sent[partition])

    def taken(self, partition: int, session: str) -> None:
        """Ordered: a session took the partition; its last owner's time closes, and the
        first batch that owner's client did not commit is charged.
        """
        self.owner[partition] = session
        _, sent = self.unclosed.pop(partition, ("", []))
        sent = [b for b in sent if position(b[-1]) > self.committed[partition]]
        if sent:
            for offset in min(sent, key=lambda b: position(b[-1])):
                self.events[offset].charges += 1
                self.events[offset].held_charge = True

    def claimed(
        self, holders: Mapping[str, str], taken: Iterable[str], live: Iterable[str] = ()
    ) -> None:
        """A claim took these offsets (delivered again, or set aside as dead letters) from
        their `holders`: they are no longer their holders' attempts. In shared mode the
        claim decides the charges; `live`, the sessions the claimer knew alive.
        """
        taken = list(taken)
        if self.shared:
            by_holder: dict[tuple[str, int], list[str]] = {}
            for offset in taken:
                key = (holders[offset], self.events[offset].partition)
                by_holder.setdefault(key, []).append(offset)
            for (holder, partition), offsets in by_holder.items():
                self._shared_claim(holder, partition, offsets, holder in set(live))
        for offset in taken:
            self.events[offset].held_charge = False

    def _shared_claim(self, holder: str, partition: int, offsets: list[str], live: bool) -> None:
        """On the partition, the holder's oldest batch not acked in full is charged; if the
        holder is gone, the rest of what it sent there is marked uncharged.
        """
        records = [
            e
            for e in self.events.values()
            if e.record and e.record[0] == holder and e.partition == partition
        ]
        numbers = [e.record[1] for e in records if e.record and e.record[1] is not None]
        head = min(numbers) if numbers else None
        for event in records:
            if event.record is not None and event.record[1] != head and not live:
                event.record = (holder, None)
        for offset in offsets:
            event = self.events[offset]
            if head is not None and event.record == (holder, head):
                event.charges += 1
            event.record = None

    # -- what Redis must hold ----------------------------------------------------------------

    def resolved(self) -> bool:
        """Every event is committed (acked) or dead."""
        return all(
            event.acked
            or offset in self.dead
            or (not self.shared and position(offset) <= self.committed[event.partition])
            for offset, event in self.events.items()
        )

    def check(self, redis: Observed) -> None:
        self.dead = set(redis.dead)
        for partition, stored in redis.committed.items():
            if stored is not None:
                assert stored == self.committed[partition], (partition, stored)
        for offset, event in self.events.items():
            where = []
            if offset in redis.dead:
                where.append("dead")
                assert redis.dead[offset] == event.charges >= self.max_deliveries, (offset, event)
                assert event.sends + event.window >= self.max_deliveries, (offset, event)
            if offset in redis.pending:
                where.append("pending")
                expected = event.charges + (0 if event.held_charge else 1)
                assert redis.pending[offset] == expected, (offset, redis.pending[offset], event)
            elif offset not in redis.dead:
                at = position(offset)
                if at > redis.last_read[event.partition]:
                    where.append("unread")
                if event.acked or (not self.shared and at <= self.committed[event.partition]):
                    where.append("committed")
            assert len(where) == 1, (offset, where, event)
            assert event.charges <= event.sends + event.window, (offset, event)


def position(offset: str) -> tuple[int, int]:
    ms, _, seq = offset.partition("-")
    return int(ms), int(seq)
