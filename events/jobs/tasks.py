"""The background jobs: plain, idempotent functions that RQ runs (docs/architecture.md#jobs).

`manage.py rqcron events.jobs.schedule` enqueues them periodically (one scheduling
process) and `manage.py rqworker` runs them. Each first takes its lease
(events/store/job_leases.py), so that two overlapping runs do nothing twice: the second
returns at once. Each returns a summary for RQ's result.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from django.conf import settings

from events.catalog import dead_letters as dead_letter_rows
from events.catalog.retention import compaction_targets, retention_targets
from events.jobs import lag, recovery
from events.models import Subscription
from events.store.compaction import compact_all
from events.store.connections import redis_client
from events.store.job_leases import exclusive
from events.store.partitions import trim_all

logger = logging.getLogger(__name__)

SKIPPED: dict[str, Any] = {"skipped": "another run of this job holds its lease"}


def _subscriptions() -> list[Subscription]:
    return list(Subscription.objects.prefetch_related("event_types"))


def reclaim() -> dict[str, Any]:
    """Remove expired sessions, drop their leases, nudge a rebalance, delete consumers with
    nothing pending, rebuild lost groups from the database's cursors.
    """
    with exclusive("reclaim") as taken:
        if not taken:
            return SKIPPED
        result = recovery.reclaim_all(redis_client(), _subscriptions())
        if result.sessions_removed or result.leases_dropped or result.groups_rebuilt:
            logger.info("reclaim: %s", result)
        return dataclasses.asdict(result)


def dead_letters() -> dict[str, Any]:
    """Store the dead letters that delivery set aside in Redis as DeadLetter rows."""
    with exclusive("dead_letters") as taken:
        if not taken:
            return SKIPPED
        return {"stored": dead_letter_rows.collect(_subscriptions())}


def retention() -> dict[str, Any]:
    """Trim every partition by its event type's retention time and length (approximately),
    and compact the partitions of compacted types a bounded step further.
    """
    with exclusive("retention") as taken:
        if not taken:
            return SKIPPED
        client = redis_client()
        trimmed = trim_all(client, retention_targets())
        compacted = compact_all(client, compaction_targets(), settings.COMPACTION_MIN_AGE_MS)
        return {"trimmed": trimmed + compacted["trimmed"], "compacted": compacted["compacted"]}


def stats() -> dict[str, Any]:
    """Measure lag per subscription and partition, and keep it for the admin and /metrics."""
    with exclusive("stats") as taken:
        if not taken:
            return SKIPPED
        return {"partitions": lag.record_lag(redis_client(), _subscriptions())}
