"""Loading a subscription's plan (`events/core/plan.py`) from the database once: its
partitions (with their store ids) and committed cursors.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

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
    """403 unless the principal may consume the subscription: among its authorization's
    `readers`, or with the consume grant (or a place among the `readers`) of every event
    type it reads; and, for a stream token, unless it is the token's subscription.
    """
    principal.require_subscription(str(subscription.pk))
    if not principal.listed(subscription.authorization, "readers"):
        _require_every_type(principal, subscription)


def require_admin(principal: Principal, subscription: Subscription) -> None:
    """403 unless the principal may change, delete or reset the subscription: an admin
    client, among its authorization's `admins`, or with the consume grant (or a place among
    the `readers`) of every event type it reads.
    """
    principal.require_subscription(str(subscription.pk))
    if not principal.administers(subscription.authorization):
        _require_every_type(principal, subscription)


def _require_every_type(principal: Principal, subscription: Subscription) -> None:
    """403 unless the principal has the consume grant, or a place among the `readers`, of
    every event type the subscription reads."""
    for event_type in subscription.event_types.all():
        principal.require("consume", event_type.name, event_type.authorization)


def load(subscription_id: str, principal: Principal, *, admin: bool = False) -> Plan:
    """The plan of a subscription the principal may consume, or administer when `admin`
    (404 / 403 otherwise).
    """
    found = get_subscription(subscription_id)
    (require_admin if admin else require_consume)(principal, found)
    return of(found)


async def cached(subscription_id: str, principal: Principal) -> Plan:
    """The plan, without offsets, of a subscription the principal may consume, from this
    process's copy while the subscription is unchanged (a commit needs no database read for
    it); 404 / 403 as `load`. Event types' sections are read only where no grant covers.
    """
    plan, authorization = await snapshots.subscription(subscription_id, _plan_and_section)
    principal.require_subscription(plan.subscription)
    if principal.listed(authorization, "readers"):
        return plan
    uncovered = [name for name in plan.partition_counts if not principal.may("consume", name)]
    sections = await asyncio.gather(*map(snapshots.authorization, uncovered))
    for name, section in zip(uncovered, sections, strict=True):
        principal.require("consume", name, section)
    return plan


def _plan_and_section(subscription_id: str) -> tuple[Plan, dict[str, Any] | None]:
    found = get_subscription(subscription_id)
    return of(found, with_offsets=False), found.authorization


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
