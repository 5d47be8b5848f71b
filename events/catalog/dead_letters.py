"""Dead letters: events a subscription could not get processed (docs/architecture.md#jobs).

A delivery script that would deliver an event more than `max_deliveries` times instead
adds it to the partition's dead-letter stream in Redis and acks it, atomically, so the
partition moves on at once and nothing is lost. The `dead_letters` job then stores each as
a DeadLetter row and deletes it from Redis (rows first: a run cut short stores it again,
and the unique constraint keeps one row).

Replay appends the event to its partition again, marked for that one subscription: every
other subscription skips it (and is advanced past it), the target delivers it like any new
event, with a new offset, and max_deliveries applies again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import redis
from django.db import transaction
from django.utils import timezone

from events.core.entries import DEAD_DELIVERIES, DEAD_OFFSET, DEAD_REASON, EVENT
from events.core.topics import keeper
from events.models import DeadLetter, EventType, Subscription
from events.store import dead_letters as store
from events.store import partitions
from events.store.connections import redis_client

logger = logging.getLogger(__name__)

PER_READ = 500  # dead letters moved per partition and read


def collect(subscriptions: Iterable[Subscription], client: redis.Redis | None = None) -> int:
    """Move the dead letters Redis holds for these subscriptions into the database;
    returns how many rows were new.
    """
    client = client or redis_client()
    targets = [
        (subscription, event_type, p)
        for subscription in subscriptions
        for event_type in subscription.event_types.all()
        for p in range(event_type.partition_count)
    ]
    stored = 0
    while targets:
        keys = [(event_type.store_id, p, str(sub.pk)) for sub, event_type, p in targets]
        replies = store.read(client, keys, PER_READ)
        more = []
        for target, entries in zip(targets, replies, strict=True):
            if entries:
                stored += _store(client, *target, entries)
            if len(entries) == PER_READ:
                more.append(target)
        targets = more
    return stored


def _store(
    client: redis.Redis,
    subscription: Subscription,
    event_type: EventType,
    partition: int,
    entries: Sequence[tuple[bytes, dict[bytes, bytes]]],
) -> int:
    # A claim counts deliveries before the subscription's filter is applied: an entry it
    # does not deliver (another topic, a replay for another subscription) was acked
    # there, which is all it needs; it is no dead letter of this subscription.
    keep = keeper(str(subscription.pk), subscription.topics or [])
    rows = [
        DeadLetter(
            subscription=subscription,
            event_type=event_type,
            partition=partition,
            offset=fields[DEAD_OFFSET].decode(),
            body=fields[EVENT].decode(),
            deliveries=int(fields[DEAD_DELIVERIES]),
            reason=fields[DEAD_REASON].decode(),
        )
        for _, fields in entries
        if keep(fields)
    ]
    _save(rows)
    # Rows first, then out of Redis. Each entry is counted (and logged) by the run whose
    # XDEL removed it, so overlapping runs neither lose one nor count it twice.
    target = (event_type.store_id, partition, str(subscription.pk))
    removed = store.delete(client, target, [entry_id for entry_id, _ in entries])
    kept = {row.offset: row for row in rows}
    added = [
        kept[fields[DEAD_OFFSET].decode()]
        for (_, fields), gone in zip(entries, removed, strict=True)
        if gone and fields[DEAD_OFFSET].decode() in kept
    ]
    for row in added:
        logger.warning(
            "dead letter: subscription %s, %s/%s@%s after %s deliveries (%s)",
            subscription.pk,
            event_type.name,
            partition,
            row.offset,
            row.deliveries,
            row.reason,
        )
    return len(added)


def _save(rows: list[DeadLetter]) -> None:
    """Insert the rows; one whose offset is a dead letter already (replayed, then dead
    again after a cursor reset) becomes dead again, with the new count.
    """
    if not rows:
        return
    DeadLetter.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["subscription", "event_type", "partition", "offset"],
        update_fields=["body", "deliveries", "reason", "status", "created_at", "replayed_at"],
    )


def replay(dead_letter: DeadLetter, client: redis.Redis | None = None) -> str | None:
    """Deliver a dead letter again, to its subscription only; returns its new offset, or
    None when it was replayed already (by someone else, just now).
    """
    client = client or redis_client()
    with transaction.atomic():
        claimed = DeadLetter.objects.filter(
            pk=dead_letter.pk, status=DeadLetter.Status.DEAD
        ).update(status=DeadLetter.Status.REPLAYED, replayed_at=timezone.now())
    if not claimed:
        return None
    try:
        offset = partitions.append_replay(
            client,
            dead_letter.event_type.store_id,
            dead_letter.partition,
            dead_letter.body,
            str(dead_letter.subscription_id),
        )
    except redis.RedisError:
        DeadLetter.objects.filter(pk=dead_letter.pk).update(
            status=DeadLetter.Status.DEAD, replayed_at=None
        )
        raise
    dead_letter.refresh_from_db()
    return offset


def discard(dead_letters: Iterable[DeadLetter]) -> int:
    """Delete dead letters for good; returns how many."""
    ids = [d.pk for d in dead_letters]
    deleted, _ = DeadLetter.objects.filter(pk__in=ids).delete()
    return deleted
