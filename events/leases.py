"""Partition leases of ordered subscriptions: who may read and ack a partition, fenced.

A lease is a hash {session, token} with a TTL on the Redis server's clock. Every
acquisition increments the partition's epoch; the token is that epoch, so a session whose
lease lapsed and was taken over holds a stale token, and every fenced step refuses it.
Extension never recreates an expired lease (DESIGN section 3).
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.client import Pipeline

from events.streams import partition_tag


def lease_key(stream: str, partition: int, subscription: str) -> str:
    """`stream` is the event type's `stream_id`, as for every partition key."""
    return f"ss:{partition_tag(stream, partition)}:lease:{subscription}"


def epoch_key(stream: str, partition: int, subscription: str) -> str:
    return f"ss:{partition_tag(stream, partition)}:epoch:{subscription}"


# Take the lease if it is free (or already ours), with a new fencing token.
# KEYS[1] lease, KEYS[2] epoch; ARGV[1] session id, ARGV[2] lease time in ms
# Returns the token, or false when another session holds the lease.
ACQUIRE_LUA = """
local holder = redis.call('HGET', KEYS[1], 'session')
if holder and holder ~= ARGV[1] then return false end
local token = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'session', ARGV[1], 'token', token)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return token
"""

# Extend our lease; never recreate one that expired or changed hands.
# KEYS[1] lease; ARGV[1] session id, ARGV[2] token, ARGV[3] lease time in ms
# Returns 1 when extended, 0 when the lease is no longer ours.
EXTEND_LUA = """
local lease = redis.call('HMGET', KEYS[1], 'session', 'token')
if lease[1] ~= ARGV[1] or lease[2] ~= ARGV[2] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

# Give our lease back at once (a hand-over), only if it is still ours.
# KEYS[1] lease; ARGV[1] session id, ARGV[2] token. Returns 1 when released, else 0.
RELEASE_LUA = """
local lease = redis.call('HMGET', KEYS[1], 'session', 'token')
if lease[1] ~= ARGV[1] or lease[2] ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""


@dataclass(frozen=True)
class Lease:
    event_type: str
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


class Leases:
    """The lease scripts, registered once on one client."""

    def __init__(self, client: AsyncRedis) -> None:
        self._acquire = client.register_script(ACQUIRE_LUA)
        self._extend = client.register_script(EXTEND_LUA)
        self._release = client.register_script(RELEASE_LUA)

    async def acquire(
        self, event_type: str, partition: int, subscription: str, session: str, ttl_ms: int
    ) -> Lease | None:
        """The lease with a new token, or None while another session holds it."""
        keys = [
            lease_key(event_type, partition, subscription),
            epoch_key(event_type, partition, subscription),
        ]
        token = await self._acquire(keys=keys, args=[session, ttl_ms])
        if token is None:
            return None
        return Lease(event_type, partition, subscription, session, int(token))

    async def extend(self, lease: Lease, ttl_ms: int) -> bool:
        """True while the lease is still ours; False once it lapsed or moved."""
        key = lease_key(lease.event_type, lease.partition, lease.subscription)
        return bool(await self._extend(keys=[key], args=[lease.session, lease.token, ttl_ms]))

    async def extend_in(self, pipe: Pipeline, lease: Lease, ttl_ms: int) -> None:
        """Queue `extend` on a pipeline (its reply: 1 while the lease is still ours)."""
        key = lease_key(lease.event_type, lease.partition, lease.subscription)
        await self._extend(keys=[key], args=[lease.session, lease.token, ttl_ms], client=pipe)

    @staticmethod
    def holder_in(pipe: Pipeline, stream: str, partition: int, subscription: str) -> None:
        """Queue a read of who holds a lease (its reply: the session id, or None)."""
        pipe.hget(lease_key(stream, partition, subscription), "session")

    async def release(self, lease: Lease) -> bool:
        """Give the lease back now, so another session need not wait for it to lapse."""
        key = lease_key(lease.event_type, lease.partition, lease.subscription)
        return bool(await self._release(keys=[key], args=[lease.session, lease.token]))
