"""Committed cursors in the database: they only move forward, whatever order commits arrive in."""

from __future__ import annotations

import asyncio

import pytest

from events.catalog import committed, committed_writer
from events.core.offsets import Cursor
from events.models import CommittedCursor, Subscription
from tests.helpers import event_type_row


@pytest.fixture
def subscription(transactional_db) -> Subscription:
    event_type = event_type_row("orders", schema="{}", retention_time_ms=60_000)
    found = Subscription.objects.create(owning_application="shop", identity="x", read_from="begin")
    found.event_types.set([event_type])
    committed.initialize(found)
    return found


def offset(subscription: Subscription) -> str:
    return CommittedCursor.objects.get(subscription=subscription, partition=0).offset


def test_a_cursor_never_moves_backwards(subscription):
    committed.record_all({str(subscription.pk): [Cursor("orders", 0, "20-0")]})
    committed.record_all({str(subscription.pk): [Cursor("orders", 0, "10-0")]})
    assert offset(subscription) == "20-0"


def test_commits_written_together_keep_the_newest_offset(subscription):
    async def scenario() -> None:
        writer = committed_writer.CursorWriter()
        await asyncio.gather(
            writer.write(str(subscription.pk), [Cursor("orders", 0, "20-0")]),
            writer.write(str(subscription.pk), [Cursor("orders", 0, "10-0")]),
        )

    asyncio.run(scenario())
    assert offset(subscription) == "20-0"


def test_a_deleted_subscriptions_cursor_does_not_fail_another(subscription):
    gone = "00000000-0000-0000-0000-000000000000"
    committed.record_all(
        {gone: [Cursor("orders", 0, "5-0")], str(subscription.pk): [Cursor("orders", 0, "7-0")]}
    )
    assert offset(subscription) == "7-0"
