"""Redis connections: one synchronous pool per process, one asyncio pool per event loop.

`settings.REDIS_URL` is read at first use, so tests can point it elsewhere.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis
from django.conf import settings

# A Redis that stops answering gives an error, not a request that hangs. Blocking reads
# (XREAD … BLOCK) need a client of their own with a longer socket timeout.
CLIENT_OPTIONS: dict[str, Any] = {
    "health_check_interval": 30,
    "socket_connect_timeout": 2.0,
    "socket_timeout": 10.0,
}

POOL_WAIT_SECONDS = 10.0  # the longest a command waits for a free connection of its pool

_sync_clients: dict[str, redis.Redis] = {}
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, aioredis.Redis]]
_async_clients = weakref.WeakKeyDictionary()


T = TypeVar("T")


def ping() -> None:
    """Raise a RedisError unless Redis answers (the readiness probe)."""
    redis_client().ping()


def loop_local(factory: Callable[[], T]) -> Callable[[], T]:
    """A getter of one `factory()` object per running event loop (hubs, writers)."""
    made: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()

    def get() -> T:
        loop = asyncio.get_running_loop()
        found = made.get(loop)
        if found is None:
            found = made[loop] = factory()
        return found

    return get


def redis_client() -> redis.Redis:
    """The process's client for `settings.REDIS_URL` (bytes in, bytes out)."""
    url: str = settings.REDIS_URL
    client = _sync_clients.get(url)
    if client is None:
        client = _sync_clients[url] = redis.Redis.from_url(url, **CLIENT_OPTIONS)
    return client


def async_redis_client() -> aioredis.Redis:
    """The running event loop's client for `settings.REDIS_URL`: pools are per loop. When
    every connection of the pool is busy (a burst of streams opening at once, after a
    restart), a command waits for one, up to POOL_WAIT_SECONDS: redis-py's default pool
    raises at once, and a browser's EventSource never comes back after the 503.
    """
    url: str = settings.REDIS_URL
    per_loop = _async_clients.setdefault(asyncio.get_running_loop(), {})
    client = per_loop.get(url)
    if client is None:
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=settings.REDIS_MAX_CONNECTIONS,
            timeout=POOL_WAIT_SECONDS,
            **CLIENT_OPTIONS,
        )
        client = per_loop[url] = aioredis.Redis(connection_pool=pool)
    return client


def end_if_cancelled() -> None:
    """Raise CancelledError if this task was asked to stop but carries on because code it
    awaited swallowed the cancellation: redis-py sends every command through
    `asyncio.wait_for`, which on Python 3.11 does that when the cancellation lands just as
    the send completes (CPython gh-86296, fixed in 3.12).
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
