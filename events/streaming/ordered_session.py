"""A stream session of an ordered subscription: it owns a fair share of the partitions by
fenced lease and sends their events in batches, one partition per batch
(docs/architecture.md#ordered-subscriptions).

The session is transport-free: it hands encoded batches to a `send` coroutine and returns
its close reason. After `open` it reads nothing from the database (what it writes, cursors
it commits itself, goes through the cursor writer); what it learns while running comes
from Redis: new entries through the hub, commits, rebalance nudges, cursor resets and
deletes through the subscription's control channel, or from a commit in its own process.

This module is the session's membership: joining, heartbeats, which partitions it holds,
hand-over and leaving. Reading and sending what it holds is `events/streaming/batcher.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis
from django.conf import settings

from events.core.offsets import BEGIN, parse_offset
from events.core.plan import Partition, Plan, Position
from events.core.problems import Problem
from events.core.rebalance import TooManySessions, fair_share
from events.core.stream_params import StreamParams
from events.store import control, subscription_state
from events.store.connections import end_if_cancelled
from events.store.hub import hub
from events.store.keys import control_channel
from events.store.leases import Leases
from events.store.sessions import Membership, Sessions
from events.streaming import assignment, closes, draining
from events.streaming.batcher import Batcher, Send
from events.streaming.owned import Owned

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0  # sessions and leases are extended, and shares recomputed, this often
SESSION_TTL_MS = 6_000  # a session (and its leases) that stops heartbeating is gone after this
REDIS_RETRY_SECONDS = 0.5  # a session waits this long between tries while Redis is away
SERVER_ENDED = ("shutdown", "rebalance")  # close reasons that are no failure of the client


class OrderedSession(Batcher):
    """Open with `open()` (may raise a Problem: 409), then `run(send)` until it closes.

    Hooks a subclass may override, besides `Batcher`'s: `_admit` (room to join),
    `_heartbeat`, `_assign` and `_take` (which partitions it holds), `_give_back` (on
    leaving) and `_on_control`.
    """

    def __init__(
        self, plan: Plan, params: StreamParams, direct: list[Position] | None = None
    ) -> None:
        super().__init__(plan, params)
        self.direct = direct
        self._sessions = Sessions(self._client)
        self._leases = Leases(self._client)
        self._closing: str | None = None
        self._rebalance = True
        self._left = asyncio.Event()
        self._finishing: str | None = None  # why the stream ends once its commits are in
        self._live: list[str] | None = None  # the live sessions, as the heartbeat just read
        self._expires_at = 0  # ms, Redis's clock: the session's expiry, and its leases'
        self._valid_until = 0.0  # loop time before which that expiry surely has not passed
        self._lingering: asyncio.Future[None] | None = None  # waiting for commits, drained

    # -- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        """Register the session; 409 when the subscription has no partition left for it."""
        channel = control_channel(self.plan.subscription)
        if draining.is_draining():
            raise Problem(503, "This server is shutting down; retry.", headers={"Retry-After": "1"})
        draining.track(self)
        try:
            await hub().listen(channel, self._on_control)
            if await subscription_state.is_resetting(self._client, self.plan.subscription):
                raise Problem(409, "A cursor reset of this subscription is in progress; retry.")
            sent_at = asyncio.get_running_loop().time()
            membership = await self._sessions.register(
                self.plan.subscription, self.id, SESSION_TTL_MS
            )
            self._renewed(membership, sent_at)
            await self._admit(membership.live)
            await control.publish(self._client, self.plan.subscription, control.REBALANCE)
        except BaseException:
            await self._leave(nudge=False)
            raise

    async def _admit(self, live: list[str]) -> None:
        """Whether the subscription has room for this session (Problem 409 if not)."""
        if self.direct is not None:
            await assignment.claim_direct(self._sessions, self.plan, self.id, self.direct, live)
        pool, auto = await assignment.pool(self._sessions, self.plan, live)
        if self.direct is None and len(auto) > len(pool):
            raise Problem(
                409,
                f"The subscription has {len(pool)} partitions for automatic assignment and "
                f"{len(auto) - 1} sessions already hold them; no partition is left for "
                "another session.",
            )

    @closes.recorded
    async def run(self, send: Send) -> str:
        """Stream until a close reason arises; returns it. Leaves the subscription on the way
        out (also when cancelled because the client went away). A Redis that stops answering
        for less than the session's lifetime (a restart) is waited for.
        """
        loop = asyncio.get_running_loop()
        stream_end = loop.time() + self.params.stream_timeout
        try:
            while True:
                try:
                    return await self._stream(send, stream_end)
                except (redis.ConnectionError, redis.TimeoutError) as error:
                    if loop.time() >= self._valid_until:  # taken for dead by now, maybe
                        return "rebalance"
                    logger.warning("session %s: %s; going on once Redis answers", self.id, error)
                    self._rebalance = True
                    await self._pause(loop.time() + REDIS_RETRY_SECONDS)
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
            if self._closing == "shutdown" and self._uncommitted():
                self._lingering = asyncio.ensure_future(self._linger())
            else:
                await asyncio.shield(self._leave(nudge=True))

    async def _stream(self, send: Send, stream_end: float) -> str:
        """The session's loop. As in Nakadi, a stream that reaches its timeout, stream limit
        or keep-alive limit first stops reading and waits (up to the commit timeout) for the
        commits of what it sent; `stream_limit` counts committed events.
        """
        loop = asyncio.get_running_loop()
        heartbeat_due = loop.time()
        while self._closing is None:
            end_if_cancelled()
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
        if self._closing == "shutdown":  # the server drains: what it holds goes out
            await self._flush(send, loop.time(), force=True)
        return self._closing

    async def _linger(self) -> None:
        """After a `shutdown` close its client may still commit what it was sent, for
        DRAIN_COMMIT_GRACE_SECONDS; then the session leaves and hands its partitions over.
        """
        loop = asyncio.get_running_loop()
        end = loop.time() + settings.DRAIN_COMMIT_GRACE_SECONDS
        try:
            while self._closing == "shutdown" and self._uncommitted() and loop.time() < end:
                self._wake.clear()
                await self._heartbeat()  # leases held; one lost ends what it covers
                await self._pause(min(end, loop.time() + HEARTBEAT_SECONDS))
        except (redis.RedisError, OSError) as error:
            logger.warning("session %s stopped waiting for commits: %s", self.id, error)
        finally:
            await asyncio.shield(self._leave(nudge=True))

    async def _pause(self, until: float) -> None:
        """Wait for a wake-up, or until the loop time `until`; a cancellation ends it. Not
        `asyncio.wait_for`, which on Python 3.11 can swallow a cancellation (CPython
        gh-86296): a session went on streaming to a client that had left.
        """
        end_if_cancelled()
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

    async def _leave(self, nudge: bool) -> None:
        hub().unlisten(control_channel(self.plan.subscription), self._on_control)
        for owned in self._owned.values():
            self._unwatch(owned)
        # What the client did not commit counts as one failed delivery, of the batch it
        # stopped in: the first it did not commit, on whichever partition (what it was sent
        # after that it never got to). Unless the server ended the session: a drain, or a
        # session taken for dead.
        failed = self._failed_in() if self._closing not in SERVER_ENDED else None
        try:
            for owned in list(self._owned.values()):
                await self._give_back(owned, charge=owned is failed)
            self._owned.clear()
            await self._sessions.leave(self.plan.subscription, self.id)
            await self._sessions.drop_direct(self.plan.subscription, self.id)
            if nudge:
                await control.publish(self._client, self.plan.subscription, control.REBALANCE)
        except Exception as error:  # leases and the session lapse on their own
            logger.warning("session %s could not leave cleanly: %s", self.id, error)
        finally:
            draining.untrack(self)
            self._left.set()

    def _failed_in(self) -> Owned | None:
        """The partition of the oldest batch sent and not committed (acked): where the
        client stopped.
        """
        waiting = [o for o in self._owned.values() if o.unacked]
        return min(waiting, key=lambda o: min(o.unacked.values()), default=None)

    async def _give_back(self, owned: Owned, charge: bool) -> None:
        """Hand a partition back as the session leaves; `charge`: what its client did not
        commit is charged a failed delivery.
        """
        await self._delivery.release(owned.lease, charge)

    # -- control messages ---------------------------------------------------------------

    def _on_control(self, text: str) -> None:
        """A control message of the subscription (events/store/control.py)."""
        kind, words = control.parse(text)
        if kind == control.COMMIT:
            session, partition, offset = words
            if session == self.id:
                self.on_commit(*control.parse_partition_name(partition), offset)
        elif kind == control.REBALANCE:
            self._rebalance = True
        elif kind == control.RESYNC:  # messages may have been missed while Redis was away
            self._rebalance = True
            for owned in self._owned.values():
                owned.on_entries()
        elif kind == control.RESET:
            self._closing = "cursor_reset"
        elif kind == control.DELETED:
            self._closing = "subscription_deleted"
        self._wake.set()

    # -- membership and assignment ------------------------------------------------------

    def _renewed(self, membership: Membership, sent_at: float) -> None:
        """The session lives until `membership.expires_at`, a time-to-live after Redis ran
        the request sent at `sent_at`, so surely until `sent_at` plus that time.
        """
        self._expires_at = membership.expires_at
        self._valid_until = sent_at + SESSION_TTL_MS / 1000

    async def _heartbeat(self) -> None:
        sent_at = asyncio.get_running_loop().time()
        membership = await self._sessions.heartbeat(self.plan.subscription, self.id, SESSION_TTL_MS)
        if membership is None:  # we were taken for dead: our partitions may have moved
            self._closing = "rebalance"
            return
        self._renewed(membership, sent_at)
        self._live = membership.live  # the assignment that follows needs no second read
        held = list(self._owned.values())
        extended = await self._leases.extend_all([o.lease for o in held], self._expires_at)
        for owned, ok in zip(held, extended, strict=True):
            if ok:
                owned.valid_until = self._valid_until
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
            pool, auto = await assignment.pool(self._sessions, self.plan, live)
            holders = await assignment.holders(self._leases, self.plan, pool)
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

    async def _take(self, partition: Partition) -> None:
        lease = await self._leases.acquire(
            partition.store_id,
            partition.partition,
            self.plan.subscription,
            self.id,
            self._expires_at,
        )
        if lease is None:  # its owner hands it over once it committed what it was sent
            return
        offset = self.plan.offsets.get(partition.position, BEGIN)
        committed = await self._delivery.prepare(lease, offset)
        if committed is None:
            return
        self._owned[partition.position] = Owned(
            partition,
            lease,
            committed=parse_offset(committed),
            sent=committed,
            flush_due=asyncio.get_running_loop().time() + self.params.batch_flush_timeout,
            valid_until=self._valid_until,
        )
        owned = self._owned[partition.position]
        hub().watch(owned.key, self._watcher(owned))

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
            await control.publish(self._client, self.plan.subscription, control.REBALANCE)
