"""Background jobs (docs/architecture.md#jobs). RQ enqueues a job by its dotted path, and
jobs queued (or failed, to be requeued) before the jobs moved to events/jobs/tasks.py name
`events.jobs.<job>`: those names stay importable here. (No module of this package may
take a job's name, or it would hide the job.)
"""

from events.jobs.tasks import SKIPPED, dead_letters, reclaim, retention, stats

__all__ = ["SKIPPED", "dead_letters", "reclaim", "retention", "stats"]
