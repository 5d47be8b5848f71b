"""Dead letters set aside on a partition (the claim scripts write them, with DEAD_LUA),
until the `dead_letters` job stores them in the database (events/catalog/dead_letters.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import redis

from events.core.entries import Fields
from events.store.keys import dead_key

DeadLetters = tuple[str, int, str]  # (store id, partition, subscription)
DeadEntry = tuple[bytes, Fields]  # its id on the dead-letter stream, and its fields


def read(client: redis.Redis, targets: Sequence[DeadLetters], count: int) -> list[list[DeadEntry]]:
    """Up to `count` of the oldest dead letters of each target, in one round trip."""
    pipe = client.pipeline(transaction=False)
    for store_id, partition, subscription in targets:
        pipe.xrange(dead_key(store_id, partition, subscription), count=count)
    replies: list[list[DeadEntry]] = pipe.execute()
    return replies


def delete(client: redis.Redis, target: DeadLetters, ids: Sequence[bytes]) -> list[bool]:
    """Delete stored dead letters from Redis; for each, whether this call removed it."""
    key = dead_key(*target)
    pipe = client.pipeline(transaction=False)
    for entry_id in ids:
        pipe.xdel(key, entry_id)
    return [bool(removed) for removed in pipe.execute()]
