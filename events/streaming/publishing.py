"""Publishing a batch of events to an event type: prepare it (`events/core/publishing.py`),
then store each partition's part in one round trip.

A failure in validating, partitioning or enriching aborts the whole batch (422, nothing
stored); a failure to store affects only the partitions whose write failed (207). Storing
is idempotent by `metadata.eid`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from events.core.publishing import Outcome, Target, prepare
from events.store import partitions

logger = logging.getLogger(__name__)


async def publish(
    events: Sequence[Any],
    target: Target,
    *,
    published_by: str,
    flow_id: str | None,
    max_event_bytes: int,
    dedup_seconds: int,
) -> Outcome:
    """Publish a batch; see the module's docstring for what each outcome means."""
    prepared = prepare(
        events,
        target,
        published_by=published_by,
        flow_id=flow_id or str(uuid.uuid4()),
        max_event_bytes=max_event_bytes,
    )
    items = prepared.items
    if not prepared.batches:
        return Outcome(422 if items else 200, items)
    ordered = list(prepared.batches.values())
    results = await partitions.append(target.store_id, ordered, target.retention, dedup_seconds)
    failed: dict[int, str] = {}
    for batch, result in zip(ordered, results, strict=True):
        if isinstance(result, Exception):
            logger.error(
                "storing %d events on %s/%d failed: %s",
                len(batch.payloads),
                target.name,
                batch.partition,
                result,
            )
            failed[batch.partition] = f"storing failed: {result}"
    for item, partition in zip(items, prepared.partitions, strict=True):
        if partition in failed:
            item.publishing_status, item.step = "failed", "publishing"
            item.detail = failed[partition]
        else:
            item.publishing_status, item.step = "submitted", "none"
    return Outcome(207 if failed else 200, items)
