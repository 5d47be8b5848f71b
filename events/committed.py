"""Committed cursors in the database: the durable position of a subscription on each
partition, from which Redis's consumer groups are (re)built. Synchronous ORM code.

A subscription gets a cursor on every partition when it is first used: `read_from` begin
is BEGIN, end is the partition's newest offset at that moment (so nothing published after
it is missed, however late the first session comes), cursors is its initial cursors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.db import transaction
from django.utils import timezone

from events import streams
from events.cursors import BEGIN, Cursor
from events.models import Cursor as CursorRow
from events.models import EventType, Subscription

Position = tuple[str, int]  # (event type name, partition)


def initialize(subscription: Subscription) -> None:
    """Give every partition of the subscription a cursor, if it has none yet."""
    have = set(
        CursorRow.objects.filter(subscription=subscription).values_list(
            "event_type_id", "partition"
        )
    )
    initial = {
        (c["event_type"], int(c["partition"])): c["offset"] for c in subscription.initial_cursors
    }
    rows = []
    for event_type in subscription.event_types.all():
        missing = [p for p in range(event_type.partition_count) if (event_type.id, p) not in have]
        if not missing:
            continue
        if subscription.read_from == Subscription.ReadFrom.END:
            infos = streams.partition_info(event_type.stream_id, missing)
            offsets = {info.partition: info.newest_available_offset for info in infos}
        elif subscription.read_from == Subscription.ReadFrom.CURSORS:
            offsets = {p: initial.get((event_type.name, p), BEGIN) for p in missing}
        else:
            offsets = {p: BEGIN for p in missing}
        rows += [
            CursorRow(subscription=subscription, event_type=event_type, partition=p, offset=o)
            for p, o in offsets.items()
        ]
    CursorRow.objects.bulk_create(rows, ignore_conflicts=True)  # a concurrent start wins


def offsets(subscription: Subscription) -> dict[Position, str]:
    """The committed offset of every partition (initializing the missing ones)."""
    initialize(subscription)
    rows = CursorRow.objects.filter(subscription=subscription).select_related("event_type")
    return {(row.event_type.name, row.partition): row.offset for row in rows}


def record_all(cursors: Mapping[str, Iterable[Cursor]]) -> None:
    """Store committed offsets (subscription id → cursors): one UPDATE each, all in one
    transaction (the rows exist from the subscription's start). Redis commits only
    offsets that advance, one partition at a time, so these writes move forward.
    """
    now = timezone.now()
    with transaction.atomic():
        for subscription_id, items in cursors.items():
            for cursor in items:
                updated = CursorRow.objects.filter(
                    subscription_id=subscription_id,
                    event_type__name=cursor.event_type,
                    partition=cursor.partition,
                ).update(offset=cursor.offset, committed_at=now)
                if not updated:  # a cursor row lost meanwhile: write it anew
                    CursorRow.objects.create(
                        subscription_id=subscription_id,
                        event_type=EventType.objects.get(name=cursor.event_type),
                        partition=cursor.partition,
                        offset=cursor.offset,
                        committed_at=now,
                    )


def reset(subscription: Subscription, cursors: Iterable[Cursor]) -> None:
    """Set cursors to the given offsets, backwards too (a reset)."""
    types = {et.name: et for et in subscription.event_types.all()}
    now = timezone.now()
    with transaction.atomic():
        for cursor in cursors:
            CursorRow.objects.update_or_create(
                subscription=subscription,
                event_type=types[cursor.event_type],
                partition=cursor.partition,
                defaults={"offset": cursor.offset, "committed_at": now},
            )
