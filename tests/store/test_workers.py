"""The workers and job runs as RQ records them (events/store/workers.py), read from the
test session's Redis after a real RQ worker ran a cron job.
"""

from __future__ import annotations

from rq import Queue, SimpleWorker
from rq.cron import CronJob

from events.store import workers
from events.store.connections import redis_client


def noop() -> str:
    return "done"


def test_a_job_s_last_run_and_the_registered_workers():
    client = redis_client()
    assert workers.last_run(client, "noop") == workers.JobRun("noop", "never run", None, None)
    worker = SimpleWorker([Queue("default", connection=client)], connection=client)
    worker.register_birth()
    try:
        [found] = workers.workers(client)
        assert found.name == worker.name
    finally:
        worker.register_death()
    assert workers.workers(client) == []

    CronJob("default", func=noop, interval=60, name="noop").enqueue(client)
    assert workers.last_run(client, "noop").status == "queued"
    SimpleWorker([Queue("default", connection=client)], connection=client).work(burst=True)
    run = workers.last_run(client, "noop")
    assert run.status == "finished"
    assert run.enqueued_at is not None
    assert run.ended_at is not None
    assert run.ended_at >= run.enqueued_at
