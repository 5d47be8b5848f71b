"""Loading a subscription's plan (`events/core/plan.py`) from the database once: its
partitions (with their store ids) and committed cursors.
"""

from __future__ import annotations

import uuid

from events.catalog import committed, snapshots
from events.catalog.auth import Principal
from events.core.plan import Partition, Plan
from events.core.problems import Problem
from events.models import Subscription

SKIP = Subscription.UnprocessableEventPolicy.SKIP


def get_subscription(subscription_id: str) -> Subscription:
    """The subscription, with its event types; 404 if there is none."""
    missing = Problem(404, f'Subscription "{subscription_id}" does not exist.')
    try:
        key = uuid.UUID(subscription_id)
    except ValueError:
        raise missing from None
    found = Subscription.objects.prefetch_related("event_types").filter(pk=key).first()
    if found is None:
        raise missing
    return found


def require_consume(principal: Principal, subscription: Subscription) -> None:
    """403 unless the principal may consume every event type of the subscription (and, for
    a stream token, unless it is the token's subscription).
    """
    principal.require_subscription(str(subscription.pk))
    for event_type in subscription.event_types.all():
        principal.require("consume", event_type.name)


def load(subscription_id: str, principal: Principal) -> Plan:
    """The plan of a subscription the principal may consume (404 / 403 otherwise)."""
    found = get_subscription(subscription_id)
    require_consume(principal, found)
    return of(found)


async def cached(subscription_id: str, principal: Principal) -> Plan:
    """The plan, without offsets, from this process's copy while the subscription is
    unchanged (a commit needs no database read for it); 404 / 403 as `load`.
    """
    plan = await snapshots.subscription(
        subscription_id, lambda key: of(get_subscription(key), with_offsets=False)
    )
    principal.require_subscription(plan.subscription)
    for name in plan.partition_counts:
        principal.require("consume", name)
    return plan


def of(found: Subscription, with_offsets: bool = True) -> Plan:
    """The plan of a subscription. Reading its committed offsets gives partitions without
    a cursor one (`committed.initialize`; for read_from end that reads Redis).
    """
    partitions = tuple(
        Partition(et.name, et.store_id, p)
        for et in sorted(found.event_types.all(), key=lambda et: et.name)
        for p in range(et.partition_count)
    )
    return Plan(
        subscription=str(found.id),
        mode=found.mode,
        commit_timeout=found.commit_timeout,
        partitions=partitions,
        offsets=committed.offsets(found) if with_offsets else {},
        max_deliveries=found.max_deliveries,
        ack_timeout=found.ack_timeout,
        topics=tuple(found.topics or ()),
        skip_unprocessable=found.unprocessable_event_policy == SKIP,
    )
