"""The background jobs (DESIGN section 6): plain, idempotent functions that RQ runs.

`manage.py rqcron events.cron` enqueues them periodically (one scheduling process; see
events/cron.py) and `manage.py rqworker` runs them. Each first takes a short Redis lease
named after it, so that two overlapping runs (a slow one and the next, or two workers)
do nothing twice: the second returns at once. The lease is short, so that a crashed run
frees it soon, and renewed while the run goes on. Each returns a summary for RQ's result.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import redis

from events import dead_letters as dead_letter_store
from events import recovery
from events.models import Subscription
from events.store.connections import redis_client
from events.store.keys import job_lease_key

logger = logging.getLogger(__name__)

LEASE_SECONDS: float = 30  # a job's lease, renewed every third of it while the job runs
SKIPPED: dict[str, Any] = {"skipped": "another run of this job holds its lease"}

# Release a job's lease only if it is still ours. KEYS[1] lease; ARGV[1] token.
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Extend a job's lease only if it is still ours. KEYS[1] lease; ARGV[1] token, ARGV[2] ms.
_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


@contextlib.contextmanager
def exclusive(name: str, client: redis.Redis | None = None) -> Iterator[bool]:
    """Hold the job's lease for the block: yields True when taken, False when another run
    holds it (then do nothing).
    """
    client = client or redis_client()
    token = uuid.uuid4().hex
    lease_ms = int(LEASE_SECONDS * 1000)
    taken = bool(client.set(job_lease_key(name), token, nx=True, px=lease_ms))
    if not taken:
        yield False
        return
    done = threading.Event()
    renewer = threading.Thread(
        target=_renew, args=(client, name, token, lease_ms, done), name=f"lease:{name}"
    )
    renewer.start()
    try:
        yield True
    finally:
        done.set()
        renewer.join()
        client.eval(_RELEASE_LUA, 1, job_lease_key(name), token)


def _renew(
    client: redis.Redis, name: str, token: str, lease_ms: int, done: threading.Event
) -> None:
    """Keep the lease while the job runs: a run longer than the lease must not overlap the
    next one. Losing it (Redis lost the key) is logged; the job's steps are idempotent.
    """
    while not done.wait(lease_ms / 3000):
        try:
            renewed = client.eval(_RENEW_LUA, 1, job_lease_key(name), token, lease_ms)
        except redis.RedisError:
            logger.warning("job %s: could not renew its lease", name, exc_info=True)
            continue
        if not renewed:
            logger.warning("job %s: lost its lease; an overlapping run may start", name)
            return


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
        return {"stored": dead_letter_store.store(_subscriptions())}


def retention() -> dict[str, Any]:
    """Trim every partition by its event type's retention time and length (approximately)."""
    from events import retention as retention_policy

    with exclusive("retention") as taken:
        if not taken:
            return SKIPPED
        return {"trimmed": retention_policy.trim_all(redis_client())}


def stats() -> dict[str, Any]:
    """Measure lag per subscription and partition, and keep it for the admin and /metrics."""
    from events import lag

    with exclusive("stats") as taken:
        if not taken:
            return SKIPPED
        return {"partitions": lag.record(redis_client(), _subscriptions())}
