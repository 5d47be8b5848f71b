"""Fenced partition leases against the real redis-server."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from django.conf import settings

from events.store.connections import redis_client
from events.store.keys import lease_key
from events.store.leases import Leases, drop_if_held_by
from streamsite.processes import wait_until
from tests.helpers import lasting


def run(scenario):
    async def main():
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        try:
            return await scenario(Leases(client), client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_one_session_holds_a_lease_at_a_time():
    async def scenario(leases, client):
        first = await leases.acquire("orders", 0, "sub", "a", lasting())
        assert first is not None
        assert await leases.acquire("orders", 0, "sub", "b", lasting()) is None
        again = await leases.acquire(
            "orders", 0, "sub", "a", lasting()
        )  # ours: re-taken, new token
        assert again.token == first.token + 1
        assert not await leases.extend(first, lasting())  # the old token is fenced off
        assert await leases.extend(again, lasting())

    run(scenario)


def test_a_dropped_lease_is_free_at_once_with_a_higher_token():
    async def scenario(leases, client):
        lease = await leases.acquire("orders", 1, "sub", "a", lasting())
        assert not drop_if_held_by(redis_client(), lease.key, "b")  # only its holder's
        assert drop_if_held_by(redis_client(), lease.key, "a")  # (the reclaim job's step)
        taken = await leases.acquire("orders", 1, "sub", "b", lasting())
        assert taken.token > lease.token
        assert not drop_if_held_by(redis_client(), lease.key, "a")  # not its any more
        assert not await leases.extend(lease, lasting())

    run(scenario)


def test_an_expired_lease_is_never_recreated_by_extending_it():
    key = lease_key("orders", 2, "sub")
    lease = run(lambda leases, client: leases.acquire("orders", 2, "sub", "a", lasting(50)))
    wait_until(lambda: not redis_client().exists(key), timeout=5, message="the lease to expire")

    async def scenario(leases, client):
        assert not await leases.extend(lease, lasting())
        assert not await client.exists(key)
        other = await leases.acquire("orders", 2, "sub", "b", lasting())
        assert other.token > lease.token

    run(scenario)


def test_leases_are_per_subscription_and_partition():
    async def scenario(leases, client):
        assert await leases.acquire("orders", 0, "sub-1", "a", lasting())
        assert await leases.acquire("orders", 0, "sub-2", "b", lasting())
        assert await leases.acquire("orders", 1, "sub-1", "b", lasting())

    run(scenario)


def test_a_lease_ends_with_its_session_and_none_is_taken_for_a_session_past_its_expiry():
    async def scenario(leases, client):
        until = lasting(10_000)
        lease = await leases.acquire("orders", 3, "sub", "a", until)
        assert await client.pexpiretime(lease.key) == until
        assert await leases.extend(lease, until + 5_000)
        assert await client.pexpiretime(lease.key) == until + 5_000
        assert not await leases.extend(lease, lasting(-1))  # the session's expiry passed
        assert await leases.acquire("orders", 4, "sub", "a", lasting(-1)) is None
        assert not await client.exists(lease_key("orders", 4, "sub"))

    run(scenario)
