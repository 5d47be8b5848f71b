"""Versions of cached rows (events/catalog/snapshots.py): a random value per key, moved by
every change, so that each process knows when its copy is stale.
"""

from __future__ import annotations

import uuid
from typing import Any

import redis

from events.store.connections import async_redis_client, redis_client


async def read(key: str) -> bytes:
    """The current version at `key`. A missing one (Redis was flushed or lost data) is
    started anew at a random value, so that no copy cached before is trusted again.
    """
    client = async_redis_client()
    version: Any = await client.get(key)
    if version is None:
        await client.set(key, uuid.uuid4().hex, nx=True)
        version = await client.get(key)
    return bytes(version or b"")


def bump(key: str) -> None:
    """Move the version at `key`. A random value, not INCR: a counter restarted after data
    loss would repeat old versions and make stale copies look current. Raises Redis's errors.
    """
    client: redis.Redis = redis_client()
    client.set(key, uuid.uuid4().hex)
