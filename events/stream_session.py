"""A stream session of an ordered subscription: it owns a fair share of the partitions by
fenced lease and sends their events in batches, one partition per batch (DESIGN section 4).

The session is transport-free: it hands encoded batches to a `send` coroutine and returns
its close reason. It makes no ORM call after `open` (DESIGN section 9); what it learns
while running comes from Redis: new entries through the hub, commits, rebalance nudges,
cursor resets and deletes through the subscription's control channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
from redis.asyncio import Redis as AsyncRedis

from events import cursor_writer, delivery, draining
from events.batches import Batch
from events.connections import async_redis_client
from events.cursors import Cursor, parse_offset
from events.delivery import Claimed, Delivery, Entry, control_channel, resetting_key
from events.hub import hub
from events.leases import Lease, Leases
from events.plans import Partition, Plan, Position
from events.problems import Problem
from events.rebalance import TooManySessions, fair_share
from events.sessions import Sessions, direct_key
from events.stream_params import StreamParams
from events.streams import log_key

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0  # sessions and leases are extended, and shares recomputed, this often
SESSION_TTL_MS = 6_000  # a session (and its leases) that stops heartbeating is gone after this
READ_MARGIN = 2.0  # seconds a lease must still hold when a read is sent (the time fence)
READ_AHEAD = 1_000  # events read ahead per partition, beyond the batch being filled

# Sends batches to the client, in order: one write for several, where the transport allows.
Send = Callable[[Sequence[Batch]], Awaitable[None]]


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
    unacked: deque[tuple[int, int]] = field(default_factory=deque)  # sent, not committed
    flush_due: float = 0.0
    keepalives: int = 0  # empty batches in a row
    more: bool = True  # the last read may have left entries behind
    releasing: bool = False
    commit_clock: float = 0.0  # when its commit timeout started counting
    valid_until: float = 0.0  # the lease holds at least until then (loop time)

    @property
    def key(self) -> str:
        return log_key(self.partition.stream, self.partition.partition)

    def on_entries(self) -> None:
        """The hub's wake-up: the partition has new entries."""
        self.more = True


def _end_if_cancelled() -> None:
    """Raise CancelledError if this task was asked to stop but carries on because code it
    awaited swallowed the cancellation: redis-py sends every command through
    `asyncio.wait_for`, which on Python 3.11 does that when the cancellation lands just as
    the send completes (CPython gh-86296, fixed in 3.12).
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class StreamSession:
    """Open with `open()` (may raise a Problem: 409), then `run(send)` until it closes."""

    def __init__(
        self, plan: Plan, params: StreamParams, direct: list[Position] | None = None
    ) -> None:
        self.plan = plan
        self.params = params
        self.id = str(uuid.uuid4())
        self.direct = direct
        self._client: AsyncRedis = async_redis_client()
        self._sessions = Sessions(self._client)
        self._leases = Leases(self._client)
        self._delivery = Delivery(self._client, plan.keep())
        self._owned: dict[Position, Owned] = {}
        self._watchers: dict[str, Callable[[], None]] = {}
        self._wake = asyncio.Event()
        self._closing: str | None = None
        self._rebalance = True
        self._sent_events = 0
        self._last_cursor: Batch | None = None
        self._started = False  # the first batch tells that the stream started
        self._idle_ticks = 0  # flush timeouts passed without a partition to send on
        self._idle_due = 0.0
        self._left = asyncio.Event()
        self._finishing: str | None = None  # why the stream ends once its commits are in
        self._live: list[str] | None = None  # the live sessions, as the heartbeat just read
        self._committed_events = 0

    # -- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        """Register the session; 409 when the subscription has no partition left for it."""
        channel = control_channel(self.plan.subscription)
        if draining.draining():
            raise Problem(503, "This server is shutting down; retry.", headers={"Retry-After": "1"})
        draining.track(self)
        try:
            await hub().listen(channel, self._on_control)
            if await self._client.exists(resetting_key(self.plan.subscription)):
                raise Problem(409, "A cursor reset of this subscription is in progress; retry.")
            live = await self._sessions.register(self.plan.subscription, self.id, SESSION_TTL_MS)
            await self._admit(live)
            await self._client.publish(channel, "rebalance")
        except BaseException:
            await self._leave(nudge=False)
            raise

    async def _admit(self, live: list[str]) -> None:
        """Whether the subscription has room for this session (Problem 409 if not)."""
        if self.direct is not None:
            await self._claim_direct(live)
        pool, auto = await self._pool(live)
        if self.direct is None and len(auto) > len(pool):
            raise Problem(
                409,
                f"The subscription has {len(pool)} partitions for automatic assignment and "
                f"{len(auto) - 1} sessions already hold them; no partition is left for "
                "another session.",
            )

    async def run(self, send: Send) -> str:
        """Stream until a close reason arises; returns it. Leaves the subscription on the way
        out (also when cancelled because the client went away). A cancellation always ends
        it, at the latest at the next turn of its loop.

        As in Nakadi, a stream that reaches its timeout, stream limit or keep-alive limit
        first stops reading and waits (up to the commit timeout) for the commits of what it
        sent, so that its client can still commit them; `stream_limit` counts committed
        events.
        """
        loop = asyncio.get_running_loop()
        stream_end = loop.time() + self.params.stream_timeout
        heartbeat_due = loop.time()
        try:
            while self._closing is None:
                _end_if_cancelled()
                self._wake.clear()
                now = loop.time()
                if self._finishing is None and now >= stream_end:
                    await self._flush(send, now, force=True)
                    self._finishing = "stream_timeout"
                if now >= heartbeat_due:
                    heartbeat_due = now + HEARTBEAT_SECONDS
                    await self._heartbeat()
                if self._rebalance and self._closing is None:
                    self._rebalance = False
                    await self._assign()
                if self._closing is not None:
                    break  # e.g. taken for dead: read nothing more
                if self._commit_deadline() < now:
                    return self._finishing or "commit_timeout"
                if self._finishing is None:
                    await self._fill()
                await self._flush(send, loop.time())
                limit = self.params.stream_limit
                if limit and self._committed_events >= limit:
                    return "stream_limit"
                if self._finishing is None and self._keepalive_limit_reached():
                    self._finishing = "keep_alive_limit"
                if self._finishing is not None and not self._uncommitted():
                    return self._finishing
                await self._hand_over()
                await self._skip_tails()
                allowance = self._allowance()
                if self._finishing is None and any(
                    o.more and self._budget(o, allowance) > 0 for o in self._readable()
                ):
                    continue
                deadlines = [heartbeat_due, *(o.flush_due for o in self._owned.values())]
                if self._finishing is None:
                    deadlines.append(stream_end)
                if not self._owned:
                    deadlines.append(self._idle_due)
                deadlines.append(self._commit_deadline())
                await self._pause(min(deadlines))
            return self._closing
        except redis.ResponseError as error:
            # A reset or delete destroys the groups under a session that is about to close.
            if self._closing is not None:
                return self._closing
            # (redis-py wraps a pipeline's error text: "Command # 1 (…) … NOGROUP …")
            if "NOGROUP" in str(error):
                # Redis lost the group (a restart without persistence, a failover): the
                # next session rebuilds it from the committed cursors.
                logger.warning("session %s lost its consumer group: %s", self.id, error)
                return "rebalance"
            raise
        finally:
            await asyncio.shield(self._leave(nudge=True))

    async def _pause(self, until: float) -> None:
        """Wait for a wake-up, or until the loop time `until`; a cancellation ends it.

        Not `asyncio.wait_for`: on Python 3.11 it swallows a cancellation that arrives in
        the loop turn in which the wake-up comes (CPython gh-86296), and the session went
        on streaming to a client that had left, holding its partitions until Daphne killed
        the request 10 s later. `asyncio.timeout_at` cancels nothing but this task.
        """
        _end_if_cancelled()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(until):
                await self._wake.wait()

    def shutdown(self) -> None:
        """End the session with `shutdown` (the server drains); its partitions are handed
        over at once.
        """
        if self._closing is None:
            self._closing = "shutdown"
        self._wake.set()

    async def abandon(self) -> None:
        """Leave without having run (the client went away before the stream started)."""
        await asyncio.shield(self._leave(nudge=True))

    async def closed(self) -> None:
        """Return once the session has left the subscription."""
        await self._left.wait()

    def last_batch(self, info: dict[str, str]) -> Batch:
        """A keep-alive batch carrying `info`, with the last cursor sent (for the close)."""
        last = self._last_cursor
        if last is None:
            first = self.plan.partitions[0]
            owned = self._owned.get(first.position)
            offset = owned.sent if owned else self.plan.offsets.get(first.position, "BEGIN")
            return Batch(first.event_type, first.partition, offset, self.id, info=info)
        return Batch(last.event_type, last.partition, last.offset, last.cursor_token, info=info)

    async def _leave(self, nudge: bool) -> None:
        hub().unlisten(control_channel(self.plan.subscription), self._on_control)
        for owned in self._owned.values():
            self._unwatch(owned)
        try:
            for owned in list(self._owned.values()):
                await self._give_back(owned)
            self._owned.clear()
            await self._sessions.leave(self.plan.subscription, self.id)
            await self._client.hdel(direct_key(self.plan.subscription), self.id)
            if nudge:
                await self._client.publish(control_channel(self.plan.subscription), "rebalance")
        except Exception as error:  # leases and the session lapse on their own
            logger.warning("session %s could not leave cleanly: %s", self.id, error)
        finally:
            draining.untrack(self)
            self._left.set()

    async def _give_back(self, owned: Owned) -> None:
        """Hand a partition back as the session leaves."""
        await self._delivery.release(owned.lease)

    # -- control messages ---------------------------------------------------------------

    def _on_control(self, text: str) -> None:
        kind, _, rest = text.partition(" ")
        if kind == "commit":
            session, partition, offset = rest.split(" ")
            if session == self.id:
                self._on_commit(partition, offset)
        elif kind == "rebalance":
            self._rebalance = True
        elif kind == "resync":  # messages may have been missed while Redis was away
            self._rebalance = True
            for owned in self._owned.values():
                owned.on_entries()
        elif kind == "reset":
            self._closing = "cursor_reset"
        elif kind == "deleted":
            self._closing = "subscription_deleted"
        self._wake.set()

    def _on_commit(self, partition: str, offset: str) -> None:
        stream, _, number = partition.rpartition(":")
        for owned in self._owned.values():
            if owned.partition.stream == stream and owned.partition.partition == int(number):
                position = parse_offset(offset)
                owned.committed = max(owned.committed, position)
                while owned.unacked and owned.unacked[0] <= owned.committed:
                    owned.unacked.popleft()
                    self._committed_events += 1
                # Any commit, also of the offset already committed (the keep-alive
                # commit), restarts the partition's commit timeout.
                owned.commit_clock = asyncio.get_running_loop().time()

    # -- membership and assignment --------------------------------------------------------

    async def _claim_direct(self, live: list[str]) -> None:
        assert self.direct is not None
        claims: Any = await self._client.hgetall(direct_key(self.plan.subscription))
        for session, raw in claims.items():
            if session.decode() in live and session.decode() != self.id:
                taken = {tuple(p) for p in orjson.loads(raw)}
                clash = sorted(taken & set(self.direct))
                if clash:
                    name, number = clash[0]
                    raise Problem(
                        409,
                        f"Partition {number} of {name!r} is streamed directly by another session.",
                    )
        await self._client.hset(
            direct_key(self.plan.subscription), self.id, orjson.dumps(self.direct)
        )

    async def _pool(self, live: list[str]) -> tuple[list[Position], list[str]]:
        """The partitions open to automatic assignment and the sessions that share them."""
        claims: Any = await self._client.hgetall(direct_key(self.plan.subscription))
        direct: set[Position] = set()
        direct_sessions = set()
        for session, raw in claims.items():
            if session.decode() in live:
                direct_sessions.add(session.decode())
                direct.update((name, int(p)) for name, p in orjson.loads(raw))
        pool = [p.position for p in self.plan.partitions if p.position not in direct]
        return pool, [s for s in live if s not in direct_sessions]

    async def _heartbeat(self) -> None:
        live = await self._sessions.heartbeat(self.plan.subscription, self.id, SESSION_TTL_MS)
        if live is None:  # we were taken for dead: our partitions may have moved already
            self._closing = "rebalance"
            return
        self._live = live  # the assignment that follows needs no second read of it
        sent_at = asyncio.get_running_loop().time()
        async with self._client.pipeline(transaction=False) as pipe:
            for owned in self._owned.values():
                await self._leases.extend_in(pipe, owned.lease, SESSION_TTL_MS)
            extended = await pipe.execute()
        for owned, ok in zip(list(self._owned.values()), extended, strict=True):
            if ok:
                owned.valid_until = sent_at + SESSION_TTL_MS / 1000
            else:
                logger.info("session %s lost %s", self.id, owned.partition)
                self._drop(owned)
        self._rebalance = True

    async def _assign(self) -> None:
        """Take the free partitions of this session's share; mark the ones to hand over."""
        live = (
            self._live
            if self._live is not None
            else await self._sessions.live(self.plan.subscription)
        )
        self._live = None
        if self.id not in live:
            self._closing = "rebalance"
            return
        if self.direct is not None:
            mine = set(self.direct)
        else:
            pool, auto = await self._pool(live)
            holders = await self._holders(pool)
            try:
                share = fair_share(pool, auto, holders)
            except TooManySessions:  # sessions that joined meanwhile wait or get 409
                share = {p: s for p, s in holders.items() if s in auto}
            mine = {p for p, session in share.items() if session == self.id}
        for position, owned in self._owned.items():
            owned.releasing = position not in mine
        for partition in self.plan.partitions:
            if partition.position in mine and partition.position not in self._owned:
                await self._take(partition)

    async def _holders(self, pool: list[Position]) -> dict[Position, str]:
        async with self._client.pipeline(transaction=False) as pipe:
            for position in pool:
                partition = self.plan.find(position)
                assert partition is not None
                self._leases.holder_in(
                    pipe, partition.stream, partition.partition, self.plan.subscription
                )
            replies = await pipe.execute()
        return {p: r.decode() for p, r in zip(pool, replies, strict=True) if r is not None}

    async def _take(self, partition: Partition) -> None:
        sent_at = asyncio.get_running_loop().time()
        lease = await self._leases.acquire(
            partition.stream, partition.partition, self.plan.subscription, self.id, SESSION_TTL_MS
        )
        if lease is None:  # its owner hands it over once it committed what it was sent
            return
        offset = self.plan.offsets.get(partition.position, "BEGIN")
        committed = await self._delivery.prepare(lease, offset)
        if committed is None:
            return
        self._owned[partition.position] = Owned(
            partition,
            lease,
            committed=parse_offset(committed),
            sent=committed,
            flush_due=asyncio.get_running_loop().time() + self.params.batch_flush_timeout,
            valid_until=sent_at + SESSION_TTL_MS / 1000,
        )
        owned = self._owned[partition.position]
        hub().watch(owned.key, self._watcher(owned))

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

    async def _hand_over(self) -> None:
        """Release the partitions this session should give up, once what it sent of them
        is committed (else the commit timeout ends the session and frees them).
        """
        released = False
        for owned in list(self._owned.values()):
            if owned.releasing and not owned.unacked:
                self._drop(owned)
                await self._delivery.release(owned.lease)
                released = True
        if released:
            await self._client.publish(control_channel(self.plan.subscription), "rebalance")

    def _skip(self, owned: Owned, offset: str) -> None:
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
            result = await delivery.commit(
                self._client,
                self.plan.subscription,
                self.id,
                partition.stream,
                partition.partition,
                offset,
            )
            if result == "committed":
                cursor = Cursor(partition.event_type, partition.partition, offset)
                await cursor_writer.writer().write(self.plan.subscription, [cursor])

    # -- reading and sending ------------------------------------------------------------

    def _readable(self) -> list[Owned]:
        """Partitions to read: not being handed over, and whose lease surely still holds
        when the read arrives (a session stalled past its lease must not take entries into
        its pending list that the next owner would never see). The next heartbeat renews
        the others.
        """
        fence = asyncio.get_running_loop().time() + READ_MARGIN
        return [o for o in self._owned.values() if not o.releasing and o.valid_until > fence]

    def _uncommitted(self) -> int:
        return sum(len(o.unacked) for o in self._owned.values())

    def _commit_deadline(self) -> float:
        """When the first partition with uncommitted events reaches its commit timeout
        (infinity when all is committed). Each partition has its own clock, so commits on
        one partition never keep another's uncommitted events, or its hand-over, waiting.
        """
        clocks = [o.commit_clock for o in self._owned.values() if o.unacked]
        return min(clocks) + self.params.commit_timeout if clocks else float("inf")

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
                self._add(owned, claimed.entries)
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
        return await self._delivery.claim(
            owned.lease, owned.claim_from or "0-0", budget, self.plan.max_deliveries
        )

    def _add(self, owned: Owned, entries: list[Entry]) -> None:
        span_ms = self.params.batch_timespan * 1000
        for offset, payload in entries:
            if payload is None:  # not for this subscription: skipped, but it advances it
                self._skip(owned, offset)
                continue
            owned.tail = None
            entry = (offset, payload)
            if span_ms and owned.buffer:
                first_ms = parse_offset(owned.buffer[0][0])[0]
                if parse_offset(entry[0])[0] - first_ms > span_ms:
                    owned.ready.append(owned.buffer)
                    owned.buffer = []
            owned.buffer.append(entry)
            if len(owned.buffer) >= self.params.batch_limit:
                owned.ready.append(owned.buffer)
                owned.buffer = []

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
        checked = await self._mark_sent(owned, ready)
        if checked is None:
            self._drop(owned)
            return False
        ready = checked
        if not ready:
            return False
        if not owned.unacked:
            owned.commit_clock = asyncio.get_running_loop().time()
        owned.keepalives = 0
        self._idle_ticks = 0
        out = []
        for events in ready:
            offset = events[-1][0]
            batch = self._batch(owned.partition, offset, [payload for _, payload in events])
            if self.plan.shared:  # each event is acked on its own, by its offset
                batch = dataclasses.replace(batch, offsets=[o for o, _ in events])
            out.append(batch)
            owned.sent = offset
            owned.unacked.extend(parse_offset(o) for o, _ in events)
            self._sent_events += len(events)
        self._last_cursor = out[-1]
        await self._emit(send, out)
        return True

    async def _mark_sent(
        self, owned: Owned, ready: list[list[tuple[str, bytes]]]
    ) -> list[list[tuple[str, bytes]]] | None:
        """Record what is about to be sent; the batches to send, or None when the
        partition is no longer ours.
        """
        if not await self._delivery.mark_sent(owned.lease, ready[-1][-1][0]):
            return None
        return ready

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
