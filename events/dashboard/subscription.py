"""What a subscription's page shows: lag per partition over time, which session owns which
partition now, the live sessions, how recent sessions ended, and its dead letters.
"""

from __future__ import annotations

from typing import Any

import redis

from events.catalog import plans
from events.dashboard.overview import partition_rows, total, unconsumed_of
from events.models import DeadLetter, Subscription
from events.store import closes, history, sessions, stats
from events.store.clock import now_ms

DEAD_LETTERS_SHOWN = 50
BODY_SHOWN = 2_000  # characters of a dead letter's event


def page(
    client: redis.Redis, subscription: Subscription, since_ms: int, bodies: bool = False
) -> dict[str, Any]:
    """Everything the page updates; lag samples taken after `since_ms` (0: the last hour);
    the dead letters' events only with `bodies` (for whoever may view dead letters).
    """
    sub_id = str(subscription.pk)
    rows = partition_rows(stats.partition_stats(plans.of(subscription), client))
    now = now_ms(client)
    if history.take_gate(client, sub_id):
        history.sample_lag(client, sub_id, unconsumed_of(rows))
    start = since_ms if since_ms > 0 else now - history.KEEP_MS
    owned: dict[str, list[str]] = {}
    for row in rows:
        if row["session"] and row["state"] == "assigned":
            owned.setdefault(row["session"], []).append(f"{row['event_type']}/{row['partition']}")
    live = sessions.live_sync(client, sub_id)
    return {
        "id": sub_id,
        "now": now,
        "mode": subscription.mode,
        "partitions": rows,
        "unconsumed": total([r["unconsumed"] for r in rows]),
        "sessions": [{"id": s, "partitions": owned.get(s, [])} for s in live],
        "closes": closes.recent(client, sub_id, 20),
        "lag": history.lag_since(client, sub_id, start),
        "dead_letters": dead_letters(subscription, bodies),
    }


def dead_letters(subscription: Subscription, bodies: bool) -> list[dict[str, Any]]:
    """The newest dead letters not yet replayed."""
    found = (
        DeadLetter.objects.filter(subscription=subscription, status=DeadLetter.Status.DEAD)
        .select_related("event_type")
        .order_by("-created_at", "-id")[:DEAD_LETTERS_SHOWN]
    )
    return [
        {
            "id": d.pk,
            "event_type": d.event_type.name,
            "partition": d.partition,
            "offset": d.offset,
            "deliveries": d.deliveries,
            "reason": d.reason,
            "created_at": int(d.created_at.timestamp() * 1000),
            "body": d.body[:BODY_SHOWN] if bodies else "",
        }
        for d in found
    ]
