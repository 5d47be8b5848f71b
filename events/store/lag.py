"""Lag snapshots: what the `stats` job measured of every subscription, kept in Redis for the
admin and `/metrics`, which then read one hash instead of every partition.

    ss:stats:lag    hash: subscription id -> JSON {"at": ms, "partitions": [PartitionLag, …]}
    ss:stats:at     when the last run measured (ms, Redis's clock)

The numbers are those of `GET /api/subscriptions/{id}/stats` (events/store/stats.py), plus
the pending count. Each run replaces the whole snapshot at once, so deleted subscriptions
drop out of it.
"""

from __future__ import annotations

from typing import TypedDict

import orjson
import redis

from events.store.keys import LAG_AT_KEY, LAG_SNAPSHOT_KEY


class PartitionLag(TypedDict):
    event_type: str
    partition: int
    unconsumed_events: int | None  # after the committed offset; None: unknown without a scan
    pending: int | None  # delivered, not committed; None: no consumer group yet
    consumer_lag_seconds: int  # age of the oldest event not committed; 0: none


class SubscriptionLag(TypedDict):
    at: int  # ms, Redis's clock
    partitions: list[PartitionLag]


class Snapshot(TypedDict):
    at: int | None  # None: no stats run yet
    subscriptions: dict[str, SubscriptionLag]


def store_snapshot(client: redis.Redis, at: int, measured: dict[str, bytes]) -> None:
    """Replace the snapshot: subscription id -> its encoded SubscriptionLag, measured at `at`."""
    with client.pipeline(transaction=True) as pipe:  # readers see the old or the new one
        pipe.delete(LAG_SNAPSHOT_KEY)
        if measured:
            pipe.hset(LAG_SNAPSHOT_KEY, mapping=measured)  # type: ignore[arg-type]
        pipe.set(LAG_AT_KEY, at)
        pipe.execute()


def snapshot(client: redis.Redis) -> Snapshot:
    """The last snapshot `store_snapshot` stored (empty, with `at` None, before the first run)."""
    with client.pipeline(transaction=True) as pipe:
        pipe.get(LAG_AT_KEY)
        pipe.hgetall(LAG_SNAPSHOT_KEY)
        at, rows = pipe.execute()
    return {
        "at": int(at) if at is not None else None,
        "subscriptions": {key.decode(): orjson.loads(value) for key, value in rows.items()},
    }


def of_subscription(client: redis.Redis, subscription_id: str) -> SubscriptionLag | None:
    """The last snapshot of one subscription; None if no run measured it yet."""
    raw = client.hget(LAG_SNAPSHOT_KEY, subscription_id)
    if raw is None:
        return None
    found: SubscriptionLag = orjson.loads(raw)
    return found
