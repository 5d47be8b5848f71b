"""Stream sessions of a subscription, against the real redis-server."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from django.conf import settings

from events.store.connections import redis_client
from events.store.keys import sessions_key
from events.store.sessions import Sessions
from streamsite.processes import wait_until


def run(scenario):
    async def main():
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        try:
            return await scenario(Sessions(client))
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_sessions_register_and_see_each_other_sorted():
    async def scenario(sessions):
        assert (await sessions.register("sub", "b", 10_000)).live == ["b"]
        assert (await sessions.register("sub", "a", 10_000)).live == ["a", "b"]
        assert (await sessions.heartbeat("sub", "b", 10_000)).live == ["a", "b"]
        assert await sessions.live("other") == []

    run(scenario)


def test_a_session_that_leaves_is_gone_at_once():
    async def scenario(sessions):
        await sessions.register("sub", "a", 10_000)
        await sessions.register("sub", "b", 10_000)
        await sessions.leave("sub", "a")
        assert await sessions.live("sub") == ["b"]
        assert await sessions.heartbeat("sub", "a", 10_000) is None  # it must stop

    run(scenario)


def test_a_session_that_stops_heartbeating_expires_on_the_servers_clock():
    run(lambda sessions: sessions.register("sub", "quiet", 50))
    run(lambda sessions: sessions.register("sub", "busy", 60_000))

    def only_busy_left():
        return run(lambda sessions: sessions.live("sub")) == ["busy"]

    wait_until(only_busy_left, timeout=5, message="the quiet session to expire")
    assert run(lambda sessions: sessions.heartbeat("sub", "quiet", 50)) is None
    assert redis_client().zscore(sessions_key("sub"), "quiet") is None  # pruned, not revived
