"""Jobs: their leases against the real redis-server (one run at a time, kept while a run
lasts), and the dotted paths RQ enqueues them by.
"""

from __future__ import annotations

import importlib
import time

import pytest
from rq import cron
from rq.utils import import_attribute

from events.jobs import schedule, tasks
from events.store import job_leases, keys
from events.store.connections import redis_client
from events.store.job_leases import exclusive


def test_a_second_run_is_refused_while_the_first_holds_the_lease():
    with exclusive("reclaim") as first:
        with exclusive("reclaim") as second:
            assert (first, second) == (True, False)
        with exclusive("stats") as other_job:
            assert other_job
    with exclusive("reclaim") as after:
        assert after


def test_a_run_longer_than_its_lease_keeps_it(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(job_leases, "LEASE_SECONDS", 0.3)
    with exclusive("retention") as taken:
        assert taken
        started = time.monotonic()
        while time.monotonic() - started < 1.2:  # four leases long: renewed, never lapsed
            with exclusive("retention") as overlapping:
                assert not overlapping
            time.sleep(0.05)
    assert not redis_client().exists(keys.job_lease_key("retention"))


def test_a_run_never_releases_a_lease_that_is_no_longer_its_own():
    with exclusive("dead_letters"):
        redis_client().set(keys.job_lease_key("dead_letters"), "another run's token")
    assert redis_client().get(keys.job_lease_key("dead_letters")) == b"another run's token"


JOBS = ("reclaim", "dead_letters", "retention", "stats")


@pytest.mark.parametrize("job", JOBS)
def test_a_job_enqueued_under_its_old_path_still_runs(job: str):
    # Jobs are enqueued by dotted path; those queued before the jobs moved name events.jobs.
    assert import_attribute(f"events.jobs.{job}") is getattr(tasks, job)


def test_the_schedule_enqueues_each_job_by_its_path_in_the_jobs_package():
    cron._job_data_registry.clear()
    importlib.reload(schedule)
    paths = {f"{d['func'].__module__}.{d['func'].__name__}" for d in cron._job_data_registry}
    assert paths == {f"events.jobs.tasks.{job}" for job in JOBS}
