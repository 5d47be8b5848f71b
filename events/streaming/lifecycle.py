"""A subscription's delivery state as a whole: a cursor reset moves its cursors (backwards
too), a delete forgets it. The API and the admin both call these.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from events.catalog import committed, plans
from events.catalog.subscriptions import partitions_of
from events.core.offsets import Cursor
from events.core.plan import Plan
from events.core.problems import Problem
from events.models import Subscription
from events.store import control, subscription_state
from events.store.connections import redis_client


def reset_cursors(plan: Plan, cursors: list[Cursor]) -> None:
    """Close every session of the subscription with `cursor_reset`, then move the cursors
    (backwards too) and forget the Redis state of those partitions; 409 while another
    reset runs. New sessions are refused (409) until it is done.
    """
    client = redis_client()
    if not subscription_state.take_reset_lock(client, plan.subscription):
        raise Problem(409, "A cursor reset of this subscription is already in progress.")
    try:
        subscription_state.close_sessions(client, plan.subscription, control.RESET)
        partitions = [plan.find((c.event_type, c.partition)) for c in cursors]
        targets = [(p.store_id, p.partition) for p in partitions if p is not None]
        # Redis first: should it fail, the database still has the old cursors, and the
        # groups of the next sessions are built from those, consistently.
        subscription_state.reset_delivery(client, plan.subscription, targets)
        committed.overwrite(plans.get_subscription(plan.subscription), cursors)
    finally:
        subscription_state.release_reset_lock(client, plan.subscription)


@contextlib.contextmanager
def deleting(subscriptions: Iterable[Subscription]) -> Iterator[None]:
    """Around the deletion of subscriptions' rows: after it, their sessions close with
    `subscription_deleted`, and their leases, groups, committed offsets and dead letters
    not yet stored go from Redis. Raises Redis's errors after the rows are gone: leases
    then lapse, and groups stay in Redis.
    """
    doomed = [(str(s.pk), partitions_of(s)) for s in subscriptions]
    yield
    client = redis_client()
    for subscription_id, partitions in doomed:
        subscription_state.forget(client, subscription_id, partitions)
