"""The live stream sessions of a subscription: a sorted set of session id -> expiry, and the
partitions sessions stream directly. The one place that reads the set.

Live means: its expiry, on the Redis server's clock (TIME inside the scripts, never a
client's), has not passed; servers with skewed clocks agree on who is alive. A session
heartbeats while its client is connected; one that stops is gone once its expiry passes,
for every reader at once, whether or not anyone has removed it yet (`reap`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis
from redis.asyncio import Redis as AsyncRedis

from events.core.plan import Position
from events.store.keys import direct_key, sessions_key
from events.store.lua import NOW_MS_LUA
from events.store.scripts import Script, run_all_sync

# Register a session, or extend one, and drop every expired session.
# KEYS[1] the subscription's sessions; ARGV[1] session id, ARGV[2] time to live in ms
# ARGV[3] '1' to register (create), '0' to heartbeat (only extend an existing session)
# Returns {its new expiry in ms, the ids of the live sessions (by expiry; callers sort
# them)}, or false when a heartbeat found its session gone (it expired: the session must
# stop, its partitions may already have moved).
TOUCH = Script(
    NOW_MS_LUA,
    """
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[3] == '0' and not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return false end
local expires = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], expires, ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return {expires, redis.call('ZRANGE', KEYS[1], 0, -1)}
""",
)

# The live sessions, changing nothing. KEYS[1] the subscription's sessions.
# Returns their ids.
LIVE = Script(
    NOW_MS_LUA,
    """
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now_ms(), '+inf')
""",
)

# Whether one session is live. KEYS[1] sessions; ARGV[1] session id. Returns 1 or 0.
IS_LIVE = Script(
    NOW_MS_LUA,
    """
local expires = redis.call('ZSCORE', KEYS[1], ARGV[1])
if expires and tonumber(expires) > now_ms() then return 1 end
return 0
""",
)

# Remove expired sessions and their direct-assignment claims.
# KEYS[1] sessions, KEYS[2] direct claims. Returns {expired ids, live ids}.
REAP = Script(
    NOW_MS_LUA,
    """
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms())
if #expired > 0 then
  redis.call('ZREM', KEYS[1], unpack(expired))
  redis.call('HDEL', KEYS[2], unpack(expired))
end
return {expired, redis.call('ZRANGE', KEYS[1], 0, -1)}
""",
)


@dataclass(frozen=True)
class Membership:
    """What registering or a heartbeat tells a session."""

    expires_at: int  # ms on the Redis server's clock: its leases last until then, no longer
    live: list[str]  # the live sessions, this one included, sorted


class Sessions:
    """A subscription's sessions, from a stream session's event loop."""

    def __init__(self, client: AsyncRedis) -> None:
        self._client = client

    async def register(self, subscription: str, session: str, ttl_ms: int) -> Membership:
        """Add a session, live for `ttl_ms` from now."""
        reply = await TOUCH(self._client, [sessions_key(subscription)], [session, ttl_ms, 1])
        return _membership(reply)

    async def heartbeat(self, subscription: str, session: str, ttl_ms: int) -> Membership | None:
        """Extend a live session by `ttl_ms` from now; None once it has expired."""
        reply = await TOUCH(self._client, [sessions_key(subscription)], [session, ttl_ms, 0])
        return None if reply is None else _membership(reply)

    async def live(self, subscription: str) -> list[str]:
        """The sessions whose expiry has not passed, sorted."""
        return _sorted(await LIVE(self._client, [sessions_key(subscription)], []))

    async def is_live(self, subscription: str, session: str) -> bool:
        """Whether `session`'s expiry has not passed."""
        return bool(await IS_LIVE(self._client, [sessions_key(subscription)], [session]))

    async def leave(self, subscription: str, session: str) -> None:
        """Remove a session at once (a clean close), so others rebalance without waiting."""
        await self._client.zrem(sessions_key(subscription), session)

    async def direct_claims(self, subscription: str) -> dict[str, set[Position]]:
        """Session -> the partitions it streams directly (of live and dead sessions)."""
        raw: Any = await self._client.hgetall(direct_key(subscription))
        return _claims(raw)

    async def claim_direct(
        self, subscription: str, session: str, partitions: Sequence[Position]
    ) -> None:
        await self._client.hset(direct_key(subscription), session, orjson.dumps(partitions))

    async def drop_direct(self, subscription: str, session: str) -> None:
        await self._client.hdel(direct_key(subscription), session)


def live_sync(client: redis.Redis, subscription: str) -> list[str]:
    """`Sessions.live` from synchronous code (the admin, stats)."""
    return _sorted(LIVE.run_sync(client, [sessions_key(subscription)], []))


def count_live(client: redis.Redis, subscriptions: Sequence[str]) -> list[int]:
    """How many live sessions each subscription has, in one round trip."""
    replies = run_all_sync(client, [(LIVE, [sessions_key(s)], []) for s in subscriptions])
    return [len(reply) if isinstance(reply, list) else 0 for reply in replies]


def direct_claims_sync(client: redis.Redis, subscription: str) -> dict[str, set[Position]]:
    raw: Any = client.hgetall(direct_key(subscription))
    return _claims(raw)


def reap(client: redis.Redis, subscription: str) -> tuple[list[str], list[str]]:
    """Remove the expired sessions (and their direct claims): (expired ids, live ids)."""
    keys = [sessions_key(subscription), direct_key(subscription)]
    expired, live = REAP.run_sync(client, keys, [])
    return [s.decode() for s in expired], [s.decode() for s in live]


def forget(client: redis.Redis, subscription: str) -> None:
    """Drop every session of the subscription (a cursor reset closes them all)."""
    client.delete(sessions_key(subscription))


def _membership(reply: Any) -> Membership:
    expires_at, live = reply
    return Membership(int(expires_at), _sorted(live))


def _sorted(members: Any) -> list[str]:
    return sorted(m.decode() for m in members)


def _claims(raw: Any) -> dict[str, set[Position]]:
    return {
        session.decode(): {(name, int(p)) for name, p in orjson.loads(value)}
        for session, value in raw.items()
    }
