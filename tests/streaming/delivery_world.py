"""A world for the model-based tests of delivery counting: real stream sessions (ordered or
shared) on the real redis-server, stepped one action at a time, with the model of
`tests/streaming/delivery_model.py` told what happened and checked against Redis after every step.

The sessions are driven through the methods their `run` loop calls (`_heartbeat`,
`_assign`, `_fill`, `_flush`, `_leave`), so that batching, the isolation of events charged
before and every Redis script take part; the clients are simulated: each keeps the batches
it received and commits or acks them. Control messages (commits, acks, lost events) reach
the sessions through a subscription the world drains after every step, as the hub would.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import orjson
import redis

from events.catalog import plans
from events.core.plan import Plan
from events.core.stream_params import StreamParams
from events.jobs import recovery
from events.store import ordered_delivery, shared_delivery
from events.store.connections import async_redis_client, redis_client
from events.store.keys import (
    committed_key,
    control_channel,
    dead_key,
    lease_key,
    log_key,
    sessions_key,
)
from events.store.sessions import Sessions
from events.streaming.ordered_session import OrderedSession
from events.streaming.shared_session import SharedSession
from tests.helpers import event_type_row, subscribe
from tests.streaming.delivery_clients import Client, forget
from tests.streaming.delivery_model import Model, Observed, position

T = TypeVar("T")
FAR = 10**6  # seconds: longer than any flush timeout
TTL_MS = 3_600_000  # sessions and leases live while the world runs; steps make them lapse


class World:
    """One subscription with its partitions, its sessions and the model."""

    def __init__(
        self, shared: bool, partitions: int, params: StreamParams, max_deliveries: int
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.shared = shared
        self.params = params
        self.model = Model(shared, partitions, max_deliveries)
        name = f"model.{uuid.uuid4().hex[:8]}"
        self.store_id = event_type_row(name, partition_count=partitions).store_id
        self.plan: Plan = dataclasses.replace(
            plans.of(subscribe(name)),
            mode="shared" if shared else "ordered",
            max_deliveries=max_deliveries,
            ack_timeout=60,  # never idle by itself: `time_passes` says when it is
        )
        self.clients: dict[str, Client] = {}
        self._published = dict.fromkeys(range(partitions), 0)
        self._later = 0.0  # seconds the sessions' clock is ahead: flush timeouts passed
        self._names = (f"s{n}" for n in itertools.count())
        self._control = redis_client().pubsub(ignore_subscribe_messages=True)
        self._control.subscribe(control_channel(self.plan.subscription))
        self._deliver_control()

    def close(self) -> None:
        for client in self.clients.values():
            self.run(forget(client))
        self._control.close()

        async def settle() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await async_redis_client().aclose()

        self.loop.run_until_complete(settle())
        self.loop.close()

    def run(self, step: Awaitable[T]) -> T:
        return self.loop.run_until_complete(step)

    @property
    def live(self) -> list[str]:
        return sorted(self.clients)

    # -- steps -------------------------------------------------------------------------------

    def publish(self, partition: int, count: int) -> None:
        """Events whose bodies name their own offsets, so that a client can tell them."""
        key = log_key(self.store_id, partition)
        for _ in range(count):
            self._published[partition] += 1
            offset = f"{partition + 1}-{self._published[partition]}"  # unique across partitions
            redis_client().xadd(key, {"e": orjson.dumps({"offset": offset})}, id=offset)
            self.model.published(offset, partition)
        self._after()

    def join(self) -> str:
        name = next(self._names)

        async def make() -> OrderedSession:
            kind = SharedSession if self.shared else OrderedSession
            session = kind(self.plan, self.params)
            session.id = f"session-{name}"  # not random: shares follow the sorted ids
            await Sessions(async_redis_client()).register(
                self.plan.subscription, session.id, TTL_MS
            )
            return session

        client = Client(name, self.run(make()))
        self._watch(client.session)
        self.clients[client.name] = client
        self.tick(client.name)
        return client.name

    def tick(self, name: str) -> None:
        """A heartbeat: leases extended (or found lost), partitions taken or handed over."""
        session = self.clients[name].session

        async def step() -> None:
            await session._heartbeat()
            await session._assign()
            await session._hand_over()

        self._step(name, step())

    def read(self, name: str) -> None:
        """The session reads ahead as far as its limits allow: what earlier holders left
        pending first (a claim, in parts), then new entries, as its loop does.
        """
        session = self.clients[name].session

        async def step() -> None:
            for _ in range(3):
                await session._fill()

        self._step(name, step())

    def send(self, name: str, flush: bool) -> None:
        """The session sends its full batches; with `flush`, also what it holds (the flush
        timeout has passed: each flush is a batch_flush_timeout later than the last).
        """
        client = self.clients[name]
        self._later += FAR if flush else 0
        now = self.loop.time() + self._later
        self._step(name, client.session._flush(client.receive, now))

    def commit(self, name: str, partition: int, pick: int) -> None:
        """Ordered: the client commits the cursor of one of its batches on a partition."""
        client = self.clients[name]
        batches = client.batches.get(partition, [])
        if not batches:
            return
        index = pick % len(batches)
        offset = batches[index][-1]

        async def step() -> str:
            sub, session = self.plan.subscription, client.session.id
            return await ordered_delivery.commit(
                async_redis_client(), sub, session, self.store_id, partition, offset
            )

        result = self.run(step())
        assert result == "committed", (name, partition, offset, result)
        self.model.committed_to(partition, offset)
        del batches[: index + 1]
        self._after()

    def settle(self) -> None:
        """Every session's client leaves; a new session takes everything, and its client
        commits or acks all it gets: every event must end committed, acked or dead.
        """
        for name in self.live:
            self.leave(name, drain=False)
        self.leases_lapse() if not self.shared else self.time_passes()
        self.reclaim()
        name = self.join()
        for _ in range(100):
            if self.model.resolved():
                return
            self.tick(name)
            self.read(name)
            self.send(name, flush=True)
            batches = self.clients[name].batches
            if self.shared:
                self.ack(name, range(sum(len(b) for bs in batches.values() for b in bs)))
            else:
                for partition in [p for p, bs in batches.items() if bs]:
                    self.commit(name, partition, -1)
        raise AssertionError("events were left neither committed nor dead")

    def ack(self, name: str, picks: Sequence[int]) -> None:
        """Shared: the client acks some of the events it received."""
        client = self.clients[name]
        received = sorted(
            (p, o) for p, batches in client.batches.items() for batch in batches for o in batch
        )
        if not received:
            return
        by_partition: dict[int, list[str]] = {}
        for partition, offset in sorted({received[i % len(received)] for i in picks}):
            by_partition.setdefault(partition, []).append(offset)
        items = [(self.plan.partitions[p], offsets) for p, offsets in by_partition.items()]

        async def step() -> list[list[str]]:
            return await shared_delivery.ack(async_redis_client(), self.plan, items)

        for (_, offsets), answers in zip(items, self.run(step()), strict=True):
            for offset, answer in zip(offsets, answers, strict=True):
                self.model.acked(offset, answer == shared_delivery.ACKED)
        gone = {o for offsets in by_partition.values() for o in offsets}
        for batches in client.batches.values():
            batches[:] = [
                kept for batch in batches if (kept := [o for o in batch if o not in gone])
            ]
        self._after()

    def leave(self, name: str, drain: bool) -> None:
        """The client disconnects (charged), or the server drains the session (not)."""
        client = self.clients.pop(name)
        if drain:
            client.session._closing = "shutdown"
        batches, holding = client.take_batches(), _holding(client)
        self.model.ended(client.session.id, batches, holding, charge=not drain, left=True)
        self.run(client.session._leave(nudge=False))
        self._after()

    def crash(self, name: str, mid_write: bool) -> None:
        """The server process dies: nothing is released, the session's heartbeat stops.
        With `mid_write`, it dies writing: what it marked sent never reaches the client.
        """
        client = self.clients.pop(name)
        if mid_write:
            client.crashing = True
            self._later += FAR
            before = len(client.sent)
            with contextlib.suppress(ConnectionError):
                self.run(client.session._flush(client.receive, self.loop.time() + self._later))
            for _, batch, _ in client.sent[before:]:
                self.model.sent(client.session.id, batch, written=False)
        batches, holding = client.take_batches(), _holding(client)
        self.model.ended(client.session.id, batches, holding, charge=True, left=False)
        self.run(forget(client))
        redis_client().zadd(sessions_key(self.plan.subscription), {client.session.id: 0})
        self._after()

    def lapse(self, name: str) -> None:
        """Ordered: the session stalls past its leases; they lapse (it learns at its next
        heartbeat) and its time as their owner ends.
        """
        client = self.clients[name]
        for owned in client.session._owned.values():
            owned.valid_until = float("-inf")  # its time fence: the lease may be gone
        batches, holding = client.take_batches(), _holding(client)
        self.model.ended(client.session.id, batches, holding, charge=True, left=False)
        self._drop_leases(lambda holder: holder == client.session.id)
        self._after()

    def leases_lapse(self) -> None:
        """Time passes for the dead: the leases of sessions no longer alive lapse."""
        live = {c.session.id for c in self.clients.values()}
        self._drop_leases(lambda holder: holder not in live)
        self._after()

    def _drop_leases(self, of: Callable[[str], bool]) -> None:
        for p in self.plan.partitions:
            key = lease_key(p.store_id, p.partition, self.plan.subscription)
            holder = redis_client().hget(key, "session")
            if holder is not None and of(holder.decode()):
                redis_client().delete(key)

    def time_passes(self) -> None:
        """Shared: everything pending is now idle past the ack timeout."""
        for p in self.plan.partitions:
            key = log_key(p.store_id, p.partition)
            for entry in self._pending_of(key):
                redis_client().xclaim(
                    key,
                    self.plan.subscription,
                    entry["consumer"],
                    0,
                    [entry["message_id"]],
                    idle=self.plan.ack_timeout * 1000,
                    justid=True,
                )
        self._after()

    def reclaim(self) -> None:
        """A run of the reclaim job."""
        recovery.reclaim(redis_client(), self.plan)
        self._after()

    # -- telling the model -------------------------------------------------------------------

    def _watch(self, session: OrderedSession) -> None:
        """Tell the model of each claim (and, ordered, each take) as it happens."""
        if isinstance(session, SharedSession):
            shared = session._shared
            claim_idle = shared.claim_idle

            async def watched_idle(*args: Any) -> Any:
                before = self._holders()
                result = await claim_idle(*args)
                live = args[5] if len(args) > 5 else ()
                self._claimed(before, [entry[0].decode() for entry in result[1]], live)
                return result

            shared.claim_idle = watched_idle  # type: ignore[method-assign,assignment]
            return
        ordered = session._delivery
        claim, prepare = ordered.claim, ordered.prepare

        async def watched_prepare(lease: Any, *args: Any) -> Any:
            result = await prepare(lease, *args)
            if result is not None:
                self.model.taken(lease.partition, lease.session)
            return result

        async def watched(*args: Any, **kwargs: Any) -> Any:
            before = self._holders()
            result = await claim(*args, **kwargs)
            if result is not None:
                self._claimed(before, [offset for offset, _ in result.entries])
            return result

        ordered.prepare = watched_prepare  # type: ignore[method-assign,assignment]
        ordered.claim = watched  # type: ignore[method-assign]

    def _claimed(
        self, before: dict[str, str], delivered: list[str], live: Sequence[str] = ()
    ) -> None:
        dead = self._dead()
        self.model.claimed(before, [o for o in before if o in delivered or o in dead], live)

    def _step(self, name: str, step: Awaitable[Any]) -> None:
        """Run a session's step; tell the model what its client received."""
        client = self.clients[name]
        before = len(client.sent)
        self.run(step)
        for _, batch, _ in client.sent[before:]:  # numbered in the order they were sent
            self.model.sent(client.session.id, batch)
        self._after()

    # -- after every step ----------------------------------------------------------------------

    def _after(self) -> None:
        self._deliver_control()
        self.model.check(self._observe())

    def _deliver_control(self) -> None:
        """Hand this step's control messages to the sessions, as the hub would."""
        marker = f"sync {uuid.uuid4().hex}"
        redis_client().publish(control_channel(self.plan.subscription), marker)
        texts: list[str] = []
        deadline = time.monotonic() + 5
        while (message := self._control.get_message(timeout=0.5)) is None or (
            text := message["data"].decode()
        ) != marker:
            assert time.monotonic() < deadline, "the control messages did not arrive within 5 s"
            if message is not None:
                texts.append(text)

        async def dispatch() -> None:  # in the loop: sessions read its clock
            for text in texts:
                for client in self.clients.values():
                    client.session._on_control(text)

        self.run(dispatch())

    def _pending_of(self, key: str) -> list[dict[str, Any]]:
        try:
            return redis_client().xpending_range(key, self.plan.subscription, "-", "+", 10**4)
        except redis.ResponseError:  # no group yet
            return []

    def _holders(self) -> dict[str, str]:
        return {
            entry["message_id"].decode(): entry["consumer"].decode()
            for p in self.plan.partitions
            for entry in self._pending_of(log_key(p.store_id, p.partition))
        }

    def _dead(self) -> dict[str, int]:
        return {
            fields[b"o"].decode(): int(fields[b"n"])
            for p in self.plan.partitions
            for _, fields in redis_client().xrange(
                dead_key(p.store_id, p.partition, self.plan.subscription)
            )
        }

    def _observe(self) -> Observed:
        observed = Observed(pending={}, dead=self._dead(), last_read={}, committed={})
        for p in self.plan.partitions:
            key = log_key(p.store_id, p.partition)
            for entry in self._pending_of(key):
                observed.pending[entry["message_id"].decode()] = entry["times_delivered"]
            groups = redis_client().xinfo_groups(key) if redis_client().exists(key) else []
            observed.last_read[p.partition] = next(
                (position(g["last-delivered-id"].decode()) for g in groups), (0, 0)
            )
            if not self.shared:
                stored = redis_client().get(
                    committed_key(p.store_id, p.partition, self.plan.subscription)
                )
                known = stored is not None and stored != b"BEGIN"
                observed.committed[p.partition] = position(stored.decode()) if known else None
        return observed


def _holding(client: Client) -> list[int]:
    """The partitions the client's session thinks it holds."""
    return [owned.partition.partition for owned in client.session._owned.values()]
