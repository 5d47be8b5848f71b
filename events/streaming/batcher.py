"""The reading and sending half of a stream session: it reads the partitions the session
holds, within the session's limits, cuts their entries into batches (one partition per
batch) and sends them (docs/architecture.md#the-path-of-an-event). `events/core/framing.py`
is a batch's wire shape; which partitions a session holds is
`events/streaming/ordered_session.py`'s concern.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable, Sequence

from redis.asyncio import Redis as AsyncRedis

from events.catalog import committed_writer
from events.core.entries import Entry
from events.core.framing import Batch
from events.core.offsets import BEGIN, Cursor, parse_offset
from events.core.plan import Partition, Plan, Position
from events.core.stream_params import StreamParams
from events.store import ordered_delivery
from events.store.connections import async_redis_client
from events.store.hub import hub
from events.store.ordered_delivery import Claimed, Delivery
from events.streaming.owned import Owned

READ_MARGIN = 2.0  # seconds a lease must still hold when a read is sent (the time fence)
READ_AHEAD = 1_000  # events read ahead per partition, beyond the batch being filled

# Sends batches to the client, in order: one write for several, where the transport allows.
Send = Callable[[Sequence[Batch]], Awaitable[None]]
Numbered = tuple[int, list[tuple[str, bytes]]]  # a batch about to go out, and its number


class Batcher:
    """Reads, batches and sends the events of the partitions in `_owned`, which a subclass
    fills and empties. Hooks a subclass may override: `_claim` (what earlier holders left
    pending), `_skip` and `_skip_tails` (entries the subscription does not deliver),
    `_mark_sent` (record a send; decides what may still go out) and `_commit_deadline`
    (when uncommitted events end the session).
    """

    def __init__(self, plan: Plan, params: StreamParams) -> None:
        self.plan = plan
        self.params = params
        self.id = str(uuid.uuid4())
        self._client: AsyncRedis = async_redis_client()
        self._keep = plan.keep()  # which entries the subscription delivers (topics, replays)
        self._delivery = Delivery(self._client, self._keep)
        self._owned: dict[Position, Owned] = {}
        self._watchers: dict[str, Callable[[], None]] = {}
        self._wake = asyncio.Event()  # set when there may be something to do
        self._sent_events = 0
        self._committed_events = 0
        self._batches_sent = 0  # numbers each batch sent: their order across partitions
        self._last_cursor: Batch | None = None
        self._started = False  # the first batch tells that the stream started
        self._idle_ticks = 0  # flush timeouts passed without a partition to send on
        self._idle_due = 0.0

    # -- held partitions ----------------------------------------------------------------

    def _watcher(self, owned: Owned) -> Callable[[], None]:
        watcher = self._watchers.get(owned.key)
        if watcher is None:

            def watcher() -> None:
                owned.on_entries()
                self._wake.set()

            self._watchers[owned.key] = watcher
        return watcher

    def _unwatch(self, owned: Owned) -> None:
        watcher = self._watchers.pop(owned.key, None)
        if watcher is not None:
            hub().unwatch(owned.key, watcher)

    def _drop(self, owned: Owned) -> None:
        """Forget a partition (released, or its lease lost). What it sent uncommitted goes
        to the next owner, so it no longer counts against stream_limit here.
        """
        self._unwatch(owned)
        self._owned.pop(owned.partition.position, None)
        self._sent_events -= len(owned.unacked)

    # -- reading ------------------------------------------------------------------------

    def _readable(self) -> list[Owned]:
        """Partitions to read: not being handed over, and whose lease surely still holds
        when the read arrives (a session stalled past its lease must not take entries into
        its pending list that the next owner would never see). The next heartbeat renews
        the others.
        """
        fence = asyncio.get_running_loop().time() + READ_MARGIN
        return [o for o in self._owned.values() if not o.releasing and o.valid_until > fence]

    def on_commit(self, store_id: str, partition: int, offset: str) -> None:
        """Its client committed `offset` on a partition (told by the commit's process
        directly, or through the control channel; twice is harmless).
        """
        for owned in self._owned.values():
            if owned.partition.store_id == store_id and owned.partition.partition == partition:
                position = parse_offset(offset)
                owned.committed = max(owned.committed, position)
                for position in list(owned.unacked):
                    if position > owned.committed:
                        break
                    del owned.unacked[position]
                    self._committed_events += 1
                # Any commit, also of the offset already committed (the keep-alive
                # commit), restarts the partition's commit timeout.
                owned.commit_clock = asyncio.get_running_loop().time()
        self._wake.set()  # a hand-over or the stream's end may wait for this commit

    def _commit_deadline(self) -> float:
        """When the first partition with uncommitted events reaches its commit timeout
        (infinity when all is committed). Each partition has its own clock, so commits on
        one partition never keep another's uncommitted events, or its hand-over, waiting.
        """
        clocks = [o.commit_clock for o in self._owned.values() if o.unacked]
        return min(clocks) + self.params.commit_timeout if clocks else float("inf")

    def _uncommitted(self) -> int:
        return sum(len(o.unacked) for o in self._owned.values())

    def _allowance(self) -> int:
        """Events the session may still read: max_uncommitted_events and stream_limit,
        minus what is uncommitted and what it holds unsent.
        """
        held = sum(len(o.buffer) + sum(map(len, o.ready)) for o in self._owned.values())
        allowance = self.params.max_uncommitted_events - self._uncommitted() - held
        if self.params.stream_limit:
            allowance = min(allowance, self.params.stream_limit - self._sent_events - held)
        return allowance

    def _budget(self, owned: Owned, allowance: int | None = None) -> int:
        """How many entries to read for a partition now: enough for several batches, so a
        small batch_limit does not cost a read per batch, within the session's allowance.
        """
        if owned.ready:
            return 0
        allowance = self._allowance() if allowance is None else allowance
        return min(max(self.params.batch_limit, READ_AHEAD) - len(owned.buffer), allowance)

    async def _fill(self) -> None:
        """Read what the budgets allow: first what earlier owners left pending, then new
        entries, in one round trip for all partitions. The allowance is shared, so the
        reads of all partitions together stay within the session's limits.
        """
        allowance = self._allowance()
        reads: list[tuple[Owned, int]] = []
        for owned in self._readable():
            budget = self._budget(owned, allowance)
            if budget <= 0 or not owned.more:
                continue
            allowance -= budget
            if owned.claim_from is not None:
                claimed = await self._claim(owned, budget)
                if claimed is None:
                    self._drop(owned)
                    continue
                owned.claim_from = None if claimed.next_start == "0-0" else claimed.next_start
                self._add(owned, claimed.entries, claimed.retried)
                allowance += budget - len(claimed.entries)
                owned.more = True  # more to claim, or `>` not tried yet
            else:
                # Cleared before the read: a wake-up that arrives while it is in flight
                # sets it again and is not lost.
                owned.more = False
                reads.append((owned, budget))
        # The claims above took round trips: check the time fence again just before reading.
        fence = asyncio.get_running_loop().time() + READ_MARGIN
        for owned, _ in reads:
            if owned.valid_until <= fence:
                owned.more = True  # read once the next heartbeat renewed the lease
        reads = [(o, n) for o, n in reads if o.valid_until > fence]
        if not reads:
            return
        results = await self._delivery.read([(o.lease, n) for o, n in reads])
        for (owned, budget), entries in zip(reads, results, strict=True):
            self._add(owned, entries)
            owned.more = owned.more or len(entries) >= budget

    async def _claim(self, owned: Owned, budget: int) -> Claimed | None:
        """Up to `budget` entries left pending by earlier owners; None without the lease."""
        plan = self.plan
        start = owned.claim_from or "0-0"
        return await self._delivery.claim(
            owned.lease, start, budget, plan.max_deliveries, plan.skip_unprocessable
        )

    def _add(
        self, owned: Owned, entries: list[Entry], retried: frozenset[str] = frozenset()
    ) -> None:
        """Cut entries into batches. One charged a failed delivery before (`retried`) goes
        in a batch of its own, so that a next failure is charged to it alone.
        """
        span_ms = self.params.batch_timespan * 1000
        for offset, payload in entries:
            if payload is None:  # not for this subscription: skipped, but it advances it
                self._skip(owned, offset)
                continue
            owned.tail = None
            entry = (offset, payload)
            if offset in retried:
                if owned.buffer:
                    owned.ready.append(owned.buffer)
                    owned.buffer = []
                owned.ready.append([entry])
                continue
            if span_ms and owned.buffer:
                first_ms = parse_offset(owned.buffer[0][0])[0]
                if parse_offset(entry[0])[0] - first_ms > span_ms:
                    owned.ready.append(owned.buffer)
                    owned.buffer = []
            owned.buffer.append(entry)
            if len(owned.buffer) >= self.params.batch_limit:
                owned.ready.append(owned.buffer)
                owned.buffer = []

    def _skip(self, owned: Owned, offset: str) -> None:
        """An entry the subscription does not deliver (topic filter) still advances it."""
        owned.tail = offset

    async def _skip_tails(self) -> None:
        """Commit, on the client's behalf, entries skipped after everything it was sent
        and committed: no cursor it gets covers them, and left pending they would come
        back with every hand-over.
        """
        for owned in list(self._owned.values()):
            offset = owned.tail
            if offset is None or owned.unacked or owned.buffer or owned.ready:
                continue
            owned.tail = None
            if not await self._delivery.mark_sent(owned.lease, offset):
                self._drop(owned)
                continue
            owned.sent = offset
            partition = owned.partition
            result = await ordered_delivery.commit(
                self._client,
                self.plan.subscription,
                self.id,
                partition.store_id,
                partition.partition,
                offset,
            )
            if result == "committed":
                cursor = Cursor(partition.event_type, partition.partition, offset)
                await committed_writer.writer().write(self.plan.subscription, [cursor])

    # -- sending ------------------------------------------------------------------------

    async def _flush(self, send: Send, now: float, force: bool = False) -> None:
        """Send full batches, and on each partition whose flush timeout passed whatever it
        holds, or a keep-alive batch with its last cursor.
        """
        spent = self._allowance() <= 0  # no batch can fill up: send what there is
        for owned in list(self._owned.values()):
            if owned.releasing:
                continue  # keeps what it holds, in case the hand-over is called off
            due = force or now >= owned.flush_due or (spent and bool(owned.buffer))
            if due and owned.buffer:
                owned.ready.append(owned.buffer)
                owned.buffer = []
            ready, owned.ready = owned.ready, []
            sent = await self._send_ready(send, owned, ready) if ready else False
            if owned.partition.position not in self._owned:
                continue
            if due and not sent and not force:
                owned.keepalives += 1
                await self._emit(send, [self._batch(owned.partition, owned.sent)])
            if due or sent:
                owned.flush_due = now + self.params.batch_flush_timeout
        if not self._owned and now >= self._idle_due:
            if self._idle_due:
                self._idle_ticks += 1
            self._idle_due = now + self.params.batch_flush_timeout

    async def _send_ready(
        self, send: Send, owned: Owned, ready: list[list[tuple[str, bytes]]]
    ) -> bool:
        """Send a partition's full batches, in order. The last offset is recorded as sent
        once, before the first batch goes out, so that the client may commit any of them.
        False when the lease moved on (its next owner delivers them).
        """
        numbered = []
        for events in ready:
            self._batches_sent += 1
            numbered.append((self._batches_sent, events))
        checked = await self._mark_sent(owned, numbered)
        if checked is None:
            self._drop(owned)
            return False
        if not checked:
            return False
        if not owned.unacked:
            owned.commit_clock = asyncio.get_running_loop().time()
        owned.keepalives = 0
        self._idle_ticks = 0
        out = []
        for number, events in checked:
            offset = events[-1][0]
            batch = self._batch(owned.partition, offset, [payload for _, payload in events])
            if self.plan.shared:  # each event is acked on its own, by its offset
                batch = dataclasses.replace(batch, offsets=[o for o, _ in events])
            out.append(batch)
            owned.sent = offset
            owned.unacked.update((parse_offset(o), number) for o, _ in events)
            self._sent_events += len(events)
        self._last_cursor = out[-1]
        await self._emit(send, out)
        return True

    async def _mark_sent(self, owned: Owned, numbered: list[Numbered]) -> list[Numbered] | None:
        """Record what is about to be sent: (number, batch) pairs; the ones to send, or None
        when the partition is no longer ours.
        """
        last = [batch[-1][0] for _, batch in numbered]
        if not await self._delivery.mark_sent(owned.lease, last[-1], last):
            return None
        return numbered

    async def _emit(self, send: Send, out: list[Batch]) -> None:
        if not self._started:
            self._started = True
            info = {"debug": "Stream started", "stream_id": self.id}
            out[0] = dataclasses.replace(out[0], info=info)
        await send(out)

    def _batch(self, partition: Partition, offset: str, events: list[bytes] | None = None) -> Batch:
        return Batch(
            partition.event_type, partition.partition, offset, uuid.uuid4().hex, events or ()
        )

    def _keepalive_limit_reached(self) -> bool:
        limit = self.params.stream_keep_alive_limit
        if not limit:
            return False
        if self._owned:
            return all(o.keepalives >= limit for o in self._owned.values())
        return self._idle_ticks >= limit

    def last_batch(self, info: dict[str, str]) -> Batch:
        """A keep-alive batch carrying `info`, with the last cursor sent (for the close)."""
        last = self._last_cursor
        if last is None:
            first = self.plan.partitions[0]
            owned = self._owned.get(first.position)
            offset = owned.sent if owned else self.plan.offsets.get(first.position, BEGIN)
            return Batch(first.event_type, first.partition, offset, self.id, info=info)
        return Batch(last.event_type, last.partition, last.offset, last.cursor_token, info=info)
