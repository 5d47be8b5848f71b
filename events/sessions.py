"""The live stream sessions of a subscription: a sorted set of session id → expiry.

Expiry uses the Redis server's clock (TIME inside the scripts), never a client's, so
servers with skewed clocks agree on who is alive (DESIGN section 3). A session heartbeats
while its client is connected; one that stops is gone once its expiry passes.
"""

from __future__ import annotations

from redis.asyncio import Redis as AsyncRedis


def sessions_key(subscription: str) -> str:
    return f"ss:{{sub:{subscription}}}:sessions"


def direct_key(subscription: str) -> str:
    """Hash: session id → JSON list of the [event type, partition] it asked for directly."""
    return f"ss:{{sub:{subscription}}}:direct"


# Register a session, or extend one, and drop every expired session.
# KEYS[1] the subscription's sessions; ARGV[1] session id, ARGV[2] time to live in ms
# ARGV[3] '1' to register (create), '0' to heartbeat (only extend an existing session)
# Returns the ids of the live sessions (by expiry; callers sort them), or false when a
# heartbeat found its session gone (it expired: the session must stop, its partitions may
# already have moved).
TOUCH_LUA = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if ARGV[3] == '0' and not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return false end
redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""

# Live sessions, without changing anything. KEYS[1] the subscription's sessions.
LIVE_LUA = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now_ms, '+inf')
"""


class Sessions:
    """The session scripts, registered once on one client."""

    def __init__(self, client: AsyncRedis) -> None:
        self._client = client
        self._touch = client.register_script(TOUCH_LUA)
        self._live = client.register_script(LIVE_LUA)

    async def register(self, subscription: str, session: str, ttl_ms: int) -> list[str]:
        """Add a session; returns the live sessions, this one included, sorted."""
        live = await self._touch(keys=[sessions_key(subscription)], args=[session, ttl_ms, 1])
        return sorted(s.decode() for s in live)

    async def heartbeat(self, subscription: str, session: str, ttl_ms: int) -> list[str] | None:
        """Extend a live session; the live sessions, or None once this one has expired."""
        live = await self._touch(keys=[sessions_key(subscription)], args=[session, ttl_ms, 0])
        return None if live is None else sorted(s.decode() for s in live)

    async def live(self, subscription: str) -> list[str]:
        """The sessions whose expiry has not passed, sorted."""
        return sorted(s.decode() for s in await self._live(keys=[sessions_key(subscription)]))

    async def leave(self, subscription: str, session: str) -> None:
        """Remove a session at once (a clean close), so others rebalance without waiting."""
        await self._client.zrem(sessions_key(subscription), session)
