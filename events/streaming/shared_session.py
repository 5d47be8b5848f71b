"""A stream session of a shared subscription: every session reads every partition as a
competing consumer of the subscription's group, and its client acknowledges each event on
its own (`POST …/acks` or the WebSocket), in any order
(docs/architecture.md#shared-subscriptions).

It is an ordered session without partition ownership: no leases, no 409, no hand-over.
What a session leaves unacknowledged past the ack timeout is claimed by another live
session (by this one when it is alone); a session that leaves gives its entries back at
once. Batches carry each event's offset, for the ack.
"""

from __future__ import annotations

import asyncio

from events.core.entries import entries_of
from events.core.offsets import BEGIN, parse_offset
from events.core.plan import Partition, Plan, Position
from events.core.problems import Problem
from events.core.stream_params import StreamParams
from events.store import control, shared_delivery
from events.store.hub import hub
from events.store.leases import Lease
from events.store.ordered_delivery import CLAIM_CHUNK, Claimed, retried_of
from events.store.shared_delivery import SharedDelivery
from events.streaming.batcher import Numbered
from events.streaming.ordered_session import SESSION_TTL_MS, OrderedSession
from events.streaming.owned import Owned


class SharedSession(OrderedSession):
    """Open with `open()`, then `run(send)` until it closes, as a OrderedSession."""

    def __init__(
        self, plan: Plan, params: StreamParams, direct: list[Position] | None = None
    ) -> None:
        super().__init__(plan, params, direct)
        self._shared = SharedDelivery(self._client)
        self._alone = True
        self._finish_started: float | None = None
        self._known_live: list[str] = []  # the live sessions, as the last heartbeat read

    async def _admit(self, live: list[str]) -> None:
        if self.direct is not None:
            raise Problem(422, "A shared subscription's sessions read every partition.")

    async def _heartbeat(self) -> None:
        membership = await self._sessions.heartbeat(self.plan.subscription, self.id, SESSION_TTL_MS)
        if membership is None:
            self._closing = "rebalance"
            return
        self._alone = membership.live == [self.id]
        self._known_live = membership.live
        await self._reconcile()
        for owned in list(self._owned.values()):
            owned.claim_from = "0-0"  # look for entries idle past the ack timeout
            owned.more = True
            if self._alone and owned.unacked:
                # Its own unacked events fill its window, so the claim in `_fill` would
                # never run: take back those past the ack timeout now. They leave the
                # window as they enter the buffer, so the window does not grow.
                claimed = await self._claim(owned, len(owned.unacked))
                if claimed is not None:
                    self._add(owned, claimed.entries, claimed.retried)

    async def _assign(self) -> None:
        for partition in self.plan.partitions:
            if partition.position not in self._owned:
                await self._take(partition)

    async def _take(self, partition: Partition) -> None:
        offset = self.plan.offsets.get(partition.position, BEGIN)
        committed = await self._shared.prepare(self.plan, partition, offset)
        lease = Lease(partition.store_id, partition.partition, self.plan.subscription, self.id, 0)
        owned = Owned(
            partition,
            lease,
            committed=parse_offset(committed),
            sent=committed,
            flush_due=asyncio.get_running_loop().time() + self.params.batch_flush_timeout,
            valid_until=float("inf"),
        )
        self._owned[partition.position] = owned
        hub().watch(owned.key, self._watcher(owned))

    async def _claim(self, owned: Owned, budget: int) -> Claimed | None:
        claimed, raw, counts = await self._shared.claim_idle(
            self.plan, owned.partition, self.id, budget, self._alone, self._known_live
        )
        # Alone, it may get back its own: what it sent no longer waits for its ack (also
        # what became a dead letter), and what it still holds unsent is not added twice.
        for offset in claimed:
            if owned.unacked.pop(parse_offset(offset), None) is not None:
                self._sent_events -= 1
        held = {offset for offset, _ in owned.buffer}
        held.update(offset for batch in owned.ready for offset, _ in batch)
        entries = [entry for entry in entries_of(raw, self._keep) if entry[0] not in held]
        # Fewer than asked for: nothing more is idle now. (Dead letters count as claimed.)
        next_start = "0-0" if len(claimed) < min(budget, CLAIM_CHUNK) else "more"
        return Claimed(next_start, entries, retried_of(raw, counts))

    async def _mark_sent(self, owned: Owned, numbered: list[Numbered]) -> list[Numbered] | None:
        """No lease to check; what is still this session's, its ack timeout counting from
        now (it may have waited in the buffer, or been claimed by another meanwhile).
        """
        offsets = [(offset, number) for number, batch in numbered for offset, _ in batch]
        kept = await self._shared.refresh(self.plan, owned.partition, self.id, offsets)
        return [(n, b) for n, batch in numbered if (b := [e for e in batch if e[0] in kept])]

    def _skip(self, owned: Owned, offset: str) -> None:
        owned.skipped.append(offset)

    async def _skip_tails(self) -> None:
        """Ack the entries the subscription does not deliver, so they do not come back."""
        items = []
        for owned in self._owned.values():
            if owned.skipped:
                items.append((owned.partition, owned.skipped))
                owned.skipped = []
        if items:
            await shared_delivery.ack(self._client, self.plan, items)

    async def _give_back(self, owned: Owned, charge: bool) -> None:
        """Only the batch its client stopped in stays chargeable (`_failed_in`)."""
        charged = min(owned.unacked.values()) if charge and owned.unacked else 0
        await self._shared.give_back(self.plan, owned.partition, self.id, charged)

    def _commit_deadline(self) -> float:
        """Unacked events never end a shared session (another session gets them after the
        ack timeout); a closing one waits for its acks up to the ack timeout.
        """
        if self._finishing is None or not self._uncommitted():
            return float("inf")
        if self._finish_started is None:
            self._finish_started = asyncio.get_running_loop().time()
        return self._finish_started + self.plan.ack_timeout

    def _on_control(self, text: str) -> None:
        """Besides the ordered session's messages: `ack <session> <partition> <offsets>`
        (its client acked them) and `lost …` (another session claimed them, unacked).
        """
        kind, words = control.parse(text)
        if kind not in (control.ACK, control.LOST):
            super()._on_control(text)
            return
        session, partition, *offsets = words
        if session != self.id:
            return
        store_id, number = control.parse_partition_name(partition)
        owned = next(
            (
                o
                for o in self._owned.values()
                if o.partition.store_id == store_id and o.partition.partition == number
            ),
            None,
        )
        if owned is None:
            return
        gone = set(offsets)
        for offset in offsets:
            # (not there: a skipped entry, or one claimed anew)
            if owned.unacked.pop(parse_offset(offset), None) is not None:
                if kind == control.ACK:
                    self._committed_events += 1
                else:  # another session has it now: it no longer counts as sent here
                    self._sent_events -= 1
        # Acked or taken while still held here: it must not be sent (again).
        owned.buffer = [entry for entry in owned.buffer if entry[0] not in gone]
        owned.ready = [
            kept for batch in owned.ready if (kept := [e for e in batch if e[0] not in gone])
        ]
        self._wake.set()

    async def _reconcile(self) -> None:
        """Forget sent events that are no longer pending for this session: an ack or a
        claim whose message was missed, or that raced with a send, must not hold a place
        in the window for good.
        """
        waiting = [o for o in self._owned.values() if o.unacked]
        if not waiting:
            return
        held = await self._shared.pending(self.plan, [o.partition for o in waiting], self.id)
        for owned, pending in zip(waiting, held, strict=True):
            if pending is None:
                continue
            stale = [p for p in owned.unacked if p not in pending]
            for position in stale:
                del owned.unacked[position]
                self._sent_events -= 1
