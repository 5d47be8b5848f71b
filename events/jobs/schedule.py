"""The schedule of the background jobs, for `manage.py rqcron events.jobs.schedule` (RQ's
cron).

Run exactly one such process (`manage.py up` does); the jobs' leases make an accidental
second one harmless, not useful.
"""

from __future__ import annotations

from django.conf import settings
from rq import cron

from events.jobs import tasks

QUEUE = "default"
SCHEDULE = [
    (tasks.reclaim, settings.JOB_PERIOD_SECONDS),
    (tasks.dead_letters, settings.JOB_PERIOD_SECONDS),
    (tasks.retention, settings.RETENTION_PERIOD_SECONDS),
    (tasks.stats, settings.STATS_PERIOD_SECONDS),
]

for job, period in SCHEDULE:
    # A run not started within two periods is dropped (the next one does its work), so
    # a stopped worker does not come back to a pile of runs; results are kept briefly.
    cron.register(
        job,
        queue_name=QUEUE,
        interval=period,
        ttl=2 * period,
        result_ttl=60,
        name=job.__name__,  # the cron's own name for it, whatever the module path
    )
