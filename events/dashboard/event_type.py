"""What an event type's page updates: its partitions and publish rate (the live tail reads
the reader endpoint itself, in the browser).
"""

from __future__ import annotations

from typing import Any

import redis

from events.dashboard import series
from events.models import EventType
from events.store import history, partitions
from events.store.clock import now_ms


def page(client: redis.Redis, event_type: EventType, since_ms: int) -> dict[str, Any]:
    """Partitions (offsets, size), the published count and rate points after `since_ms`."""
    target = [(event_type.store_id, event_type.partition_count)]
    [(published, size)] = history.published_counts(client, target)
    now = now_ms(client)
    if history.take_gate(client):
        # The overview's gate: one sample of every type a second whichever page polls.
        rows = list(EventType.objects.values_list("store_id", "partition_count"))
        counts = history.published_counts(client, rows)
        history.record_published(client, [s for s, _ in rows], [n for n, _ in counts])
    start = since_ms if since_ms > 0 else now - history.KEEP_MS
    [samples] = history.published_since(client, [event_type.store_id], start)
    infos = partitions.partition_info(event_type.store_id, range(event_type.partition_count))
    return {
        "name": event_type.name,
        "now": now,
        "published": published,
        "size": size,
        "newest_sample": samples[-1][0] if samples else since_ms,
        "points": series.rates(samples),
        "partitions": [
            {
                "partition": info.partition,
                "oldest": info.oldest_available_offset,
                "newest": info.newest_available_offset,
                "size": info.length,
            }
            for info in infos
        ],
    }
