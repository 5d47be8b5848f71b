"""The background workers as RQ records them in Redis, for the dashboard's health: the
live workers, the cron process, and the last run of each scheduled job
(docs/architecture.md#jobs). Read-only.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import datetime

import redis
from rq.cron import CronScheduler, get_cron_job_history_key, get_cron_job_ids
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.worker import Worker

from events.store.keys import job_lease_key

RUNS_LOOKED_AT = 5  # a cron job's newest runs read to find the last one RQ still keeps


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    state: str  # RQ's: idle, busy, …
    last_heartbeat: int | None  # ms since the epoch


@dataclass(frozen=True)
class JobRun:
    name: str
    status: str  # RQ's status of the newest run it keeps; "running" while the lease is held
    enqueued_at: int | None  # ms since the epoch; None: never enqueued (or forgotten)
    ended_at: int | None


def _ms(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment is not None else None


def _text(value: object) -> str:
    """An RQ status (an enum of str, or a str) as its plain value."""
    return str(getattr(value, "value", value))


def workers(client: redis.Redis) -> list[WorkerInfo]:
    """The workers registered with RQ (each removes itself on exit; RQ drops dead ones)."""
    return [
        WorkerInfo(worker.name, _text(worker.get_state()), _ms(worker.last_heartbeat))
        for worker in Worker.all(connection=client)
    ]


def scheduled_jobs(client: redis.Redis) -> list[str]:
    """The names of the jobs the running cron processes schedule."""
    names: set[str] = set()
    for scheduler in CronScheduler.all(client, cleanup=False):
        raw = client.hget(scheduler.key, "cron_jobs")
        with contextlib.suppress(TypeError, ValueError):
            names.update(job["name"] for job in json.loads(raw or b"[]"))  # type: ignore[arg-type]
    return sorted(names)


def last_run(client: redis.Redis, name: str) -> JobRun:
    """The newest run of the cron job `name` that RQ still keeps (results live a minute)."""
    ids = get_cron_job_ids(name, client, 0, RUNS_LOOKED_AT - 1)
    running = bool(client.exists(job_lease_key(name)))
    for job_id in ids:
        try:
            job = Job.fetch(job_id, connection=client)
        except NoSuchJobError:
            continue
        status = "running" if running else _text(job.get_status(refresh=False))
        return JobRun(name, status, _ms(job.enqueued_at), _ms(job.ended_at))
    if ids:
        at = client.zscore(get_cron_job_history_key(name), ids[0])
        return JobRun(name, "finished", int(float(at) * 1000) if at else None, None)
    return JobRun(name, "running" if running else "never run", None, None)
