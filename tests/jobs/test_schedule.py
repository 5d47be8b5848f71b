"""The dotted paths RQ enqueues the jobs by: the schedule's, and the old ones of jobs queued
before the jobs moved to events/jobs/tasks.py.
"""

from __future__ import annotations

import importlib

import pytest
from rq import cron
from rq.utils import import_attribute

from events.jobs import schedule, tasks

pytestmark = pytest.mark.no_redis

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
