"""`GET /metrics`: Streamsite's state for Prometheus, in its text exposition format.

Counters come from Redis's own stream counters, read at scrape time (a few pipelined round
trips, however many partitions); lag comes from the `stats` job's last snapshot
(events/store/lag.py), so a scrape never measures lag itself; dead letters from the database,
skipped events from their counters in Redis.
When `settings.METRICS_TOKEN` is set, a scrape must send it as a bearer token.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from typing import Any

import redis
from django.conf import settings
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from events.api.http import problem_response
from events.core import exposition
from events.core.exposition import Family
from events.models import DeadLetter, EventType, Subscription
from events.store import lag, sessions
from events.store.clock import now_ms
from events.store.connections import redis_client
from events.store.metrics import PartitionRead, read_partitions, read_skipped

logger = logging.getLogger(__name__)
SKIP = Subscription.UnprocessableEventPolicy.SKIP


def published(read: PartitionRead) -> int:
    """Events ever appended to the partition: Redis's entries-added, else (before Redis 7,
    which does not count them) its current length, which retention lowers.
    """
    return read.entries_added if read.entries_added is not None else read.length


def group_counts(group: Mapping[str, Any], entries_added: int | None) -> tuple[int, int] | None:
    """(read, read and acknowledged) of a consumer group, or None before Redis 7.

    "Read" is Redis's entries-read: the position of the group's last delivered entry,
    counted from the partition's first ever entry. A group created at an offset has none
    until it reads; its lag, when Redis knows it, gives the same position.
    """
    read = group.get("entries-read")
    if read is None and group.get("lag") is not None and entries_added is not None:
        read = entries_added - int(group["lag"])
    if read is None:
        return None
    return int(read), max(0, int(read) - int(group["pending"]))


def families() -> dict[str, Family]:
    """Every family /metrics serves, empty, in the order they are rendered."""
    listed = [
        Family(
            "streamsite_events_published_total",
            "counter",
            "Events appended to the partition since it was created (Redis's entries-added; "
            "before Redis 7, its current length).",
        ),
        Family(
            "streamsite_events_delivered_total",
            "counter",
            "Position of the subscription's consumer group in the partition, in entries "
            "from the partition's first (Redis's entries-read): every entry it read, "
            "delivered or skipped by its topic filter; a subscription that started at the "
            "end starts at the partition's count then. Its rate is the delivery rate. "
            "Redis 7 and later.",
        ),
        Family(
            "streamsite_events_committed_total",
            "counter",
            "Entries read by the subscription's consumer group and acknowledged: committed, "
            "skipped by its topic filter, set aside as dead letters or skipped after "
            "max_deliveries (delivered minus pending), counted as delivered_total is. "
            "Redis 7 and later.",
        ),
        Family(
            "streamsite_events_skipped_total",
            "counter",
            "Events the subscription gave up on after max_deliveries deliveries and skipped "
            '(acknowledged, not stored), by its unprocessable-event policy "skip" (Nakadi\'s '
            'SKIP_EVENT); under "dead_letter" they are dead letters instead.',
        ),
        Family(
            "streamsite_consumer_lag_events",
            "gauge",
            "Events after the subscription's committed offset on the partition, as of the "
            "last stats run (absent while unknown).",
        ),
        Family(
            "streamsite_consumer_pending_events",
            "gauge",
            "Events delivered to a session of the subscription and not yet committed, as "
            "of the last stats run.",
        ),
        Family(
            "streamsite_consumer_lag_seconds",
            "gauge",
            "Age of the oldest event the subscription has not committed on the partition "
            "(0 when there is none), as of the last stats run.",
        ),
        Family(
            "streamsite_sessions",
            "gauge",
            "Live stream sessions of the subscription (heartbeat not expired).",
        ),
        Family(
            "streamsite_dead_letters",
            "gauge",
            "Dead letters of the subscription in the database, by status.",
        ),
        Family(
            "streamsite_stats_age_seconds",
            "gauge",
            "Seconds since the last stats run measured lag (absent before the first run).",
        ),
    ]
    return {f.name: f for f in listed}


def collect(client: redis.Redis) -> list[Family]:
    """Read everything a scrape reports; raises Redis's errors."""
    out = families()
    policies = dict(Subscription.objects.values_list("pk", "unprocessable_event_policy"))
    known = {str(pk) for pk in policies}
    skipping = {str(pk) for pk, policy in policies.items() if policy == SKIP}
    now = now_ms(client)

    partitions = [
        (name, store_id, p)
        for name, store_id, count in EventType.objects.order_by("name").values_list(
            "name", "store_id", "partition_count"
        )
        for p in range(count)
    ]
    store_ids = {name: store_id for name, store_id, _ in partitions}
    groups: list[tuple[str, int, str]] = []  # (event type, partition, subscription)
    for read in read_partitions(client, partitions):
        labels = {"event_type": read.event_type, "partition": read.partition}
        out["streamsite_events_published_total"].add(published(read), **labels)
        for group in read.groups:
            subscription = group["name"].decode()
            if subscription in known:
                groups.append((read.event_type, read.partition, subscription))
            counts = group_counts(group, read.entries_added)
            if subscription not in known or counts is None:
                continue
            delivered, committed = counts
            out["streamsite_events_delivered_total"].add(
                delivered, subscription=subscription, **labels
            )
            out["streamsite_events_committed_total"].add(
                committed, subscription=subscription, **labels
            )

    targets = [(store_ids[name], p, subscription) for name, p, subscription in groups]
    for (name, p, subscription), skipped in zip(groups, read_skipped(client, targets), strict=True):
        if subscription in skipping or skipped:  # a dead-letter policy's counter stays 0
            out["streamsite_events_skipped_total"].add(
                skipped, subscription=subscription, event_type=name, partition=p
            )

    snapshot = lag.snapshot(client)
    for subscription, recorded in sorted(snapshot["subscriptions"].items()):
        if subscription not in known:
            continue  # deleted since the last stats run
        for row in recorded["partitions"]:
            labels = {
                "subscription": subscription,
                "event_type": row["event_type"],
                "partition": row["partition"],
            }
            if row["unconsumed_events"] is not None:
                out["streamsite_consumer_lag_events"].add(row["unconsumed_events"], **labels)
            if row["pending"] is not None:
                out["streamsite_consumer_pending_events"].add(row["pending"], **labels)
            out["streamsite_consumer_lag_seconds"].add(row["consumer_lag_seconds"], **labels)
    if snapshot["at"] is not None:
        out["streamsite_stats_age_seconds"].add(max(0, now - snapshot["at"]) / 1000)

    live_counts = sessions.count_live(client, sorted(known))
    for subscription, live in zip(sorted(known), live_counts, strict=True):
        out["streamsite_sessions"].add(live, subscription=subscription)

    dead = {
        (str(row["subscription_id"]), row["status"]): row["n"]
        for row in DeadLetter.objects.order_by()
        .values("subscription_id", "status")
        .annotate(n=Count("id"))
    }
    for subscription in sorted(known):
        for status in DeadLetter.Status.values:
            out["streamsite_dead_letters"].add(
                dead.get((subscription, status), 0), subscription=subscription, status=status
            )
    return list(out.values())


def _authorized(request: HttpRequest) -> bool:
    """True when no token is configured, or the request carries it as a bearer token."""
    token: str = settings.METRICS_TOKEN
    if not token:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """The exposition; 401 without the configured token, 503 while Redis is not answering."""
    if not _authorized(request):
        return problem_response(
            401,
            "Send the metrics token as 'Authorization: Bearer <token>'.",
            headers={"WWW-Authenticate": 'Bearer realm="streamsite metrics"'},
        )
    try:
        found = collect(redis_client())
    except redis.RedisError as error:
        logger.warning("/metrics: Redis is not answering: %s", error)
        return problem_response(503, f"Redis is not answering: {error}")
    return HttpResponse(exposition.render(found), content_type=exposition.CONTENT_TYPE)
