"""What the overview shows: every event type with its publish rate, partitions and size;
every subscription with its lag per partition, unconsumed events, live sessions and dead
letters. Read live from Redis on each poll; samples for the charts go to
events/store/history.py at most once a second.
"""

from __future__ import annotations

from typing import Any

import redis
from django.db.models import Count
from django.urls import reverse

from events.catalog import plans
from events.dashboard import series
from events.models import DeadLetter, EventType, Subscription
from events.store import history, sessions, stats
from events.store.clock import now_ms


def event_types(client: redis.Redis, since_ms: int) -> tuple[list[dict[str, Any]], int]:
    """Each event type with its counts and the rate points after `since_ms` (ms, the time
    of the newest sample the page has; 0 for the last hour); and the newest sample's time.
    """
    rows = list(
        EventType.objects.order_by("name").values_list("name", "store_id", "partition_count")
    )
    targets = [(store_id, count) for _, store_id, count in rows]
    store_ids = [store_id for store_id, _ in targets]
    counts = history.published_counts(client, targets)
    now = now_ms(client)
    if history.take_gate(client):
        history.record_published(client, store_ids, [published for published, _ in counts])
    start = since_ms if since_ms > 0 else now - history.KEEP_MS
    sampled = history.published_since(client, store_ids, start)
    newest = max((s[-1][0] for s in sampled if s), default=since_ms)
    items = []
    for (name, _, partitions), (published, size), samples in zip(
        rows, counts, sampled, strict=True
    ):
        items.append(
            {
                "name": name,
                "url": reverse("dashboard:event-type", args=[name]),
                "partitions": partitions,
                "size": size,
                "published": published,
                "points": series.rates(samples),
            }
        )
    return items, newest


def partition_rows(measured: list[stats.PartitionStats]) -> list[dict[str, Any]]:
    """A subscription's partitions as the pages show them."""
    return [
        {
            "event_type": s.partition.event_type,
            "partition": s.partition.partition,
            "state": s.state,
            "session": s.session,
            "committed": s.committed,
            "unconsumed": s.unconsumed_events,
            "pending": s.pending,
            "lag_seconds": s.consumer_lag_seconds,
        }
        for s in measured
    ]


def unconsumed_of(rows: list[dict[str, Any]]) -> dict[str, int | None]:
    """ "<event type>/<partition>" -> unconsumed events: what a lag sample keeps."""
    return {f"{r['event_type']}/{r['partition']}": r["unconsumed"] for r in rows}


def total(values: list[int | None]) -> int | None:
    """The sum, or None when any part is unknown."""
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def subscriptions(client: redis.Redis) -> list[dict[str, Any]]:
    """Every subscription with its partitions' lag, live sessions and dead letters."""
    found = list(Subscription.objects.prefetch_related("event_types").order_by("created_at"))
    ids = [str(s.pk) for s in found]
    live = sessions.count_live(client, ids)
    dead = dict(
        DeadLetter.objects.filter(status=DeadLetter.Status.DEAD)
        .order_by()
        .values_list("subscription_id")
        .annotate(n=Count("id"))
        .values_list("subscription_id", "n")
    )
    sample = history.take_gate(client, "all")
    items = []
    for subscription, sub_id, live_count in zip(found, ids, live, strict=True):
        rows = partition_rows(stats.partition_stats(plans.of(subscription), client))
        if sample:
            history.sample_lag(client, sub_id, unconsumed_of(rows))
        items.append(
            {
                "id": sub_id,
                "url": reverse("dashboard:subscription", args=[sub_id]),
                "name": f"{subscription.owning_application}/{subscription.consumer_group}",
                "event_types": sorted(et.name for et in subscription.event_types.all()),
                "mode": subscription.mode,
                "partitions": rows,
                "unconsumed": total([r["unconsumed"] for r in rows]),
                "sessions": live_count,
                "dead_letters": dead.get(subscription.pk, 0),
            }
        )
    return items
