"""A background job's lease: two overlapping runs of one job (a slow one and the next, or
two workers) do nothing twice, the second returns at once. The lease is short, so that a
crashed run frees it soon, and renewed while the run goes on.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Iterator

import redis

from events.store.connections import redis_client
from events.store.keys import job_lease_key
from events.store.scripts import Script

logger = logging.getLogger(__name__)

LEASE_SECONDS: float = 30  # a job's lease, renewed every third of it while the job runs

# Release a job's lease only if it is still ours. KEYS[1] lease; ARGV[1] token.
# Returns 1 when released, else 0.
RELEASE_JOB_LEASE = Script("""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""")

# Extend a job's lease only if it is still ours. KEYS[1] lease; ARGV[1] token, ARGV[2] ms.
# Returns 1 when extended, else 0.
RENEW_JOB_LEASE = Script("""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
""")


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
        RELEASE_JOB_LEASE.run_sync(client, [job_lease_key(name)], [token])


def _renew(
    client: redis.Redis, name: str, token: str, lease_ms: int, done: threading.Event
) -> None:
    """Keep the lease while the job runs: a run longer than the lease must not overlap the
    next one. Losing it (Redis lost the key) is logged; the job's steps are idempotent.
    """
    while not done.wait(lease_ms / 3000):
        try:
            renewed = RENEW_JOB_LEASE.run_sync(client, [job_lease_key(name)], [token, lease_ms])
        except redis.RedisError:
            logger.warning("job %s: could not renew its lease", name, exc_info=True)
            continue
        if not renewed:
            logger.warning("job %s: lost its lease; an overlapping run may start", name)
            return
