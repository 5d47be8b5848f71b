"""The `stats` job's measurement: lag of every partition of every subscription, stored as
one snapshot (events/store/lag.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import orjson
import redis

from events.catalog import plans
from events.models import EventType, Subscription
from events.store import history, stats
from events.store.clock import now_ms
from events.store.lag import PartitionLag, store_snapshot

logger = logging.getLogger(__name__)


def record_lag(client: redis.Redis, subscriptions: Sequence[Subscription]) -> int:
    """Measure every partition of every subscription and store the snapshot, replacing the
    last one; returns how many partitions were measured. A subscription that Redis fails to
    answer for is logged and left out of this snapshot; the others are kept.
    """
    at = now_ms(client)
    measured: dict[str, bytes] = {}
    count = 0
    for subscription in subscriptions:
        plan = plans.of(subscription)
        try:
            partitions = [_lag(s) for s in stats.partition_stats(plan, client)]
        except redis.RedisError as error:
            logger.warning("stats of subscription %s failed: %s", plan.subscription, error)
            continue
        measured[plan.subscription] = orjson.dumps({"at": at, "partitions": partitions})
        count += len(partitions)
    store_snapshot(client, at, measured)
    record_history(client, measured)
    logger.debug("stats measured %s partitions of %s subscriptions", count, len(measured))
    return count


def record_history(client: redis.Redis, measured: dict[str, bytes]) -> None:
    """Add the dashboard's samples (events/store/history.py): every subscription's lag just
    measured, and every event type's published count, so that its charts show the last
    hour also of a time nobody watched.
    """
    for subscription, encoded in measured.items():
        rows = orjson.loads(encoded)["partitions"]
        unconsumed = {f"{r['event_type']}/{r['partition']}": r["unconsumed_events"] for r in rows}
        history.sample_lag(client, subscription, unconsumed)
    types = list(EventType.objects.values_list("store_id", "partition_count"))
    history.sample_published(client, types)


def _lag(measured: stats.PartitionStats) -> PartitionLag:
    return {
        "event_type": measured.partition.event_type,
        "partition": measured.partition.partition,
        "unconsumed_events": measured.unconsumed_events,
        "pending": measured.pending,
        "consumer_lag_seconds": measured.consumer_lag_seconds,
    }
