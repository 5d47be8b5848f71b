"""Partition leases of ordered subscriptions: who may read and ack a partition, fenced.

A lease is a hash {session, token, sent} that expires with its session: at the expiry the
session's last heartbeat gave it (events/store/sessions.py), on the Redis server's clock.
So a lease names a live session, and a step that finds the caller's lease needs no other
liveness check (the commit relies on that). `sent`, the last offset sent to the holder, is
ordered delivery's (events/store/ordered_delivery.py). Every acquisition increments the
partition's epoch; the token is that epoch, so a session whose lease lapsed and was taken
over holds a stale token, and every fenced step refuses it. Extension never recreates an
expired lease (docs/architecture.md#redis-layout).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.asyncio import Redis as AsyncRedis

from events.store.keys import epoch_key, lease_key
from events.store.lua import NOW_MS_LUA
from events.store.scripts import Script, run_all

# Take the lease if it is free (or already ours), with a new fencing token.
# KEYS[1] lease, KEYS[2] epoch; ARGV[1] session id, ARGV[2] the session's expiry in ms
# Returns the token, or false when another session holds the lease (or the session's
# expiry has passed).
ACQUIRE = Script(
    NOW_MS_LUA,
    """
local holder = redis.call('HGET', KEYS[1], 'session')
if holder and holder ~= ARGV[1] then return false end
if tonumber(ARGV[2]) <= now_ms() then return false end
local token = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'session', ARGV[1], 'token', token)
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return token
""",
)

# Extend our lease to the session's new expiry; never recreate one that expired or
# changed hands.
# KEYS[1] lease; ARGV[1] session id, ARGV[2] token, ARGV[3] the session's expiry in ms
# Returns 1 when extended, 0 when the lease is no longer ours.
EXTEND = Script(
    NOW_MS_LUA,
    """
local lease = redis.call('HMGET', KEYS[1], 'session', 'token')
if lease[1] ~= ARGV[1] or lease[2] ~= ARGV[2] then return 0 end
if tonumber(ARGV[3]) <= now_ms() then return 0 end
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1
""",
)

# Drop a lease if the given (dead) session still holds it (the reclaim job).
# KEYS[1] lease; ARGV[1] session. Returns 1 when dropped, else 0.
DROP = Script("""
if redis.call('HGET', KEYS[1], 'session') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
""")


@dataclass(frozen=True)
class Lease:
    store_id: str  # the event type's, as in its partition keys
    partition: int
    subscription: str
    session: str
    token: int

    @property
    def consumer(self) -> str:
        """The session's consumer in the partition's group for this lease: one per time it
        holds the partition, so that what it held before it lost and took back the
        partition is another consumer's, judged as any earlier owner's. A shared session
        holds no lease (token 0) and is one consumer, named after it.
        """
        return f"{self.session}:{self.token}" if self.token else self.session

    @property
    def key(self) -> str:
        return lease_key(self.store_id, self.partition, self.subscription)


class Leases:
    """Partition leases, from a stream session's event loop."""

    def __init__(self, client: AsyncRedis) -> None:
        self._client = client

    async def acquire(
        self, store_id: str, partition: int, subscription: str, session: str, expires_at: int
    ) -> Lease | None:
        """The lease with a new token, lasting until `expires_at` (the session's expiry, in
        ms on the Redis server's clock), or None while another session holds it.
        """
        keys = [
            lease_key(store_id, partition, subscription),
            epoch_key(store_id, partition, subscription),
        ]
        token = await ACQUIRE(self._client, keys, [session, expires_at])
        if token is None:
            return None
        return Lease(store_id, partition, subscription, session, int(token))

    async def extend(self, lease: Lease, expires_at: int) -> bool:
        """True while the lease is still ours; False once it lapsed or moved."""
        args = [lease.session, lease.token, expires_at]
        return bool(await EXTEND(self._client, [lease.key], args))

    async def extend_all(self, leases: Sequence[Lease], expires_at: int) -> list[bool]:
        """`extend` each, in one round trip."""
        runs = [(EXTEND, [lease.key], [lease.session, lease.token, expires_at]) for lease in leases]
        return [_true(reply) for reply in await run_all(self._client, runs)]

    async def holdings(
        self, partitions: Sequence[tuple[str, int]], subscription: str
    ) -> list[tuple[str | None, str | None]]:
        """(holder, last offset sent to it) of each (store id, partition)'s lease, in one
        round trip; (None, None) for a lease nobody holds.
        """
        async with self._client.pipeline(transaction=False) as pipe:
            for store_id, partition in partitions:
                pipe.hmget(lease_key(store_id, partition, subscription), "session", "sent")
            replies: list[Any] = await pipe.execute()
        return [(_text(holder), _text(sent)) for holder, sent in replies]

    async def holders(
        self, partitions: Sequence[tuple[str, int]], subscription: str
    ) -> list[str | None]:
        """Who holds the lease of each (store id, partition), in one round trip."""
        async with self._client.pipeline(transaction=False) as pipe:
            for store_id, partition in partitions:
                pipe.hget(lease_key(store_id, partition, subscription), "session")
            replies: list[Any] = await pipe.execute()
        return [_text(reply) for reply in replies]


def drop_if_held_by(client: redis.Redis, key: str, session: str) -> bool:
    """Drop the lease at `key` if the (dead) `session` still holds it."""
    return bool(DROP.run_sync(client, [key], [session]))


def _text(reply: bytes | None) -> str | None:
    return reply.decode() if reply is not None else None


def _true(reply: Any) -> bool:
    if isinstance(reply, Exception):
        raise reply
    return bool(reply)
