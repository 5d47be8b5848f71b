"""Acknowledging events of a shared subscription, one by one
(docs/architecture.md#shared-subscriptions): for `POST /api/subscriptions/{id}/acks` and
`{"ack": [...]}` on the WebSocket.

An ack takes an event out of the subscription's pending entries, whichever session has it
now; an event that is not pending (acked before, dead-lettered, never delivered) is
answered `not_pending` and changes nothing. Every item is checked before any is acked.
"""

from __future__ import annotations

from typing import Any

from events.core.offsets import Cursor
from events.core.plan import Partition, Plan
from events.core.problems import Problem
from events.store import shared_delivery
from events.store.connections import async_redis_client
from events.streaming import commits

MAX_ITEMS = 10_000


def parse_acks(plan: Plan, body: Any) -> list[Cursor]:
    """The events of an `{"items": [{event_type, partition, offset}, ...]}` body; 422 for
    anything malformed, or when the subscription is not shared.
    """
    if not plan.shared:
        raise Problem(
            422,
            "Only a shared subscription acknowledges events one by one; an ordered one "
            "commits cursors (POST /api/subscriptions/{id}/cursors).",
        )
    return commits.parse_items(plan, body, noun="event", limit=MAX_ITEMS)


async def acknowledge(plan: Plan, body: Any) -> list[dict[str, Any]]:
    """Ack the events of a request body; each item with its result (`acked` or
    `not_pending`), in the order given.
    """
    cursors = parse_acks(plan, body)
    by_partition: dict[Partition, list[int]] = {}
    for index, cursor in enumerate(cursors):
        partition = plan.find((cursor.event_type, cursor.partition))
        assert partition is not None  # parse_cursor checked it
        by_partition.setdefault(partition, []).append(index)
    groups = list(by_partition.items())
    replies = await shared_delivery.ack(
        async_redis_client(),
        plan,
        [(partition, [cursors[i].offset for i in indexes]) for partition, indexes in groups],
    )
    results = [""] * len(cursors)
    for (_, indexes), reply in zip(groups, replies, strict=True):
        for index, result in zip(indexes, reply, strict=True):
            results[index] = result
    return [
        {**cursor.as_json(), "result": result}
        for cursor, result in zip(cursors, results, strict=True)
    ]
