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

from events.core.offsets import BEGIN, Cursor, parse_offset
from events.core.plan import Position
from events.models import CommittedCursor, EventType, Subscription
from events.store import partitions


def initialize(subscription: Subscription) -> None:
    """Give every partition of the subscription a cursor, if it has none yet."""
    have = set(
        CommittedCursor.objects.filter(subscription=subscription).values_list(
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
            infos = partitions.partition_info(event_type.store_id, missing)
            offsets = {info.partition: info.newest_available_offset for info in infos}
        elif subscription.read_from == Subscription.ReadFrom.CURSORS:
            offsets = {p: initial.get((event_type.name, p), BEGIN) for p in missing}
        else:
            offsets = {p: BEGIN for p in missing}
        rows += [
            CommittedCursor(subscription=subscription, event_type=event_type, partition=p, offset=o)
            for p, o in offsets.items()
        ]
    CommittedCursor.objects.bulk_create(rows, ignore_conflicts=True)  # a concurrent start wins


def offsets(subscription: Subscription) -> dict[Position, str]:
    """The committed offset of every partition (initializing the missing ones)."""
    initialize(subscription)
    rows = CommittedCursor.objects.filter(subscription=subscription).select_related("event_type")
    return {(row.event_type.name, row.partition): row.offset for row in rows}


def record_all(cursors: Mapping[str, Iterable[Cursor]]) -> None:
    """Store committed offsets (subscription id → cursors), each subscription in one
    transaction. A cursor only moves forward: commits may reach the database out of the
    order Redis applied them (several connections, several server processes). Cursors of a
    subscription or event type deleted meanwhile are dropped; one subscription's failure
    does not fail another's, and is raised after the others are stored.
    """
    failure: Exception | None = None
    for subscription_id, items in cursors.items():
        try:
            with transaction.atomic():
                _record(subscription_id, items)
        except Exception as error:
            failure = failure or error
    if failure is not None:
        raise failure


def _record(subscription_id: str, items: Iterable[Cursor]) -> None:
    now = timezone.now()
    for cursor in items:
        rows = CommittedCursor.objects.select_for_update().filter(
            subscription_id=subscription_id,
            event_type__name=cursor.event_type,
            partition=cursor.partition,
        )
        row = rows.first()
        if row is None:  # a row lost meanwhile: write it anew, unless its owner is gone
            event_type = EventType.objects.filter(name=cursor.event_type).first()
            if event_type is None or not Subscription.objects.filter(pk=subscription_id).exists():
                continue
            CommittedCursor.objects.create(
                subscription_id=subscription_id,
                event_type=event_type,
                partition=cursor.partition,
                offset=cursor.offset,
                committed_at=now,
            )
        elif parse_offset(cursor.offset) > parse_offset(row.offset):
            row.offset = cursor.offset
            row.committed_at = now
            row.save(update_fields=["offset", "committed_at"])


def overwrite(subscription: Subscription, cursors: Iterable[Cursor]) -> None:
    """Set cursors to the given offsets, backwards too (a reset)."""
    types = {et.name: et for et in subscription.event_types.all()}
    now = timezone.now()
    with transaction.atomic():
        for cursor in cursors:
            CommittedCursor.objects.update_or_create(
                subscription=subscription,
                event_type=types[cursor.event_type],
                partition=cursor.partition,
                defaults={"offset": cursor.offset, "committed_at": now},
            )
