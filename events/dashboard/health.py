"""The health panel: Redis, the database, the workers and the last run of each job."""

from __future__ import annotations

from typing import Any

import redis
from django.db import connection

from events.store import workers
from events.store.connections import redis_client

# The jobs of events/jobs/schedule.py, listed even while no cron process runs (the
# dashboard may not import the jobs package: both are at the edge).
KNOWN_JOBS = ("reclaim", "dead_letters", "retention", "stats")
WORKER_SILENT_MS = 60_000  # a worker that has not heartbeat for this long looks dead


def health(now_ms: int) -> dict[str, Any]:
    """Each part as {"ok": bool, "detail": text, ...}; never raises for a part that fails."""
    out: dict[str, Any] = {"redis": _redis(), "database": _database()}
    try:
        out.update(_workers(redis_client(), now_ms))
    except redis.RedisError as error:
        out["workers"] = {"ok": False, "detail": f"unknown: {error}", "items": []}
        out["jobs"] = []
    return out


def _redis() -> dict[str, Any]:
    try:
        info: Any = redis_client().info("server")
        memory: Any = redis_client().info("memory")
    except redis.RedisError as error:
        return {"ok": False, "detail": f"not answering: {error}"}
    detail = f"Redis {info.get('redis_version', '?')}, {memory.get('used_memory_human', '?')} used"
    return {"ok": True, "detail": detail}


def _database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:  # any driver's error means "not answering"
        return {"ok": False, "detail": f"not answering: {error}"}
    return {"ok": True, "detail": f"{connection.vendor} answers"}


def _workers(client: redis.Redis, now_ms: int) -> dict[str, Any]:
    found = workers.workers(client)
    alive = [w for w in found if w.last_heartbeat and now_ms - w.last_heartbeat < WORKER_SILENT_MS]
    names = sorted(set(KNOWN_JOBS) | set(workers.scheduled_jobs(client)))
    runs = [workers.last_run(client, name) for name in names]
    return {
        "workers": {
            "ok": bool(alive),
            "detail": f"{len(alive)} running" if alive else "no worker is running",
            "items": [
                {"name": w.name, "state": w.state, "last_heartbeat": w.last_heartbeat}
                for w in found
            ],
        },
        "jobs": [
            {
                "name": run.name,
                "status": run.status,
                "enqueued_at": run.enqueued_at,
                "ended_at": run.ended_at,
            }
            for run in runs
        ],
    }
