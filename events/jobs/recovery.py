"""Recovery after consumers or servers die, and after Redis loses state (the `reclaim`
job; docs/architecture.md#jobs), one subscription at a time:

- Sessions whose heartbeat expired are removed; leases their dead sessions hold are
  dropped, and a rebalance nudge lets the live sessions take those partitions at once.
- In shared mode, what dead sessions left unacknowledged becomes claimable at once.
- Consumers are deleted once nothing is pending for them (their entries were claimed by a
  new owner, or acked): those of dead sessions, and those a live ordered session had for
  partitions it has held before (one per lease).
- A consumer group Redis lost (a restart without persistence, a failover) is built again
  from the committed cursor in the database, never from `$`.
- Shared subscriptions have no cumulative commit: their durable cursor is the low-water
  mark (everything up to it acknowledged), kept here so that a rebuilt group starts there.

The Redis steps are in events/store/ (recovery.py, and sessions, leases and control
messages); this module adds the database's cursors.
Every step is idempotent: a second run, or two at once, finds nothing left to do.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from django.db import DatabaseError

from events.catalog import committed, plans
from events.core.offsets import BEGIN, Cursor, previous_offset
from events.core.plan import Partition, Plan, Position
from events.models import Subscription
from events.store import control, recovery, sessions, subscription_state
from events.store.keys import lease_key
from events.store.leases import drop_if_held_by

logger = logging.getLogger(__name__)


@dataclass
class Reclaimed:
    """What one run changed: zero everywhere when there was nothing to do."""

    sessions_removed: int = 0
    leases_dropped: int = 0
    consumers_deleted: int = 0
    groups_rebuilt: int = 0
    checkpoints: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, other: Reclaimed) -> None:
        self.sessions_removed += other.sessions_removed
        self.leases_dropped += other.leases_dropped
        self.consumers_deleted += other.consumers_deleted
        self.groups_rebuilt += other.groups_rebuilt
        self.checkpoints += other.checkpoints


def reclaim(
    client: redis.Redis, plan: Plan, offsets: Callable[[], Mapping[Position, str]] | None = None
) -> Reclaimed:
    """Recover one subscription. `offsets` reads its committed offsets from the database
    (default: the plan's); it is called after the Redis state was read, so that a cursor
    reset that finished meanwhile is seen, and one still running is skipped.
    """
    done = Reclaimed()
    sub = plan.subscription
    if subscription_state.is_resetting_sync(client, sub):
        return done  # a cursor reset rebuilds everything itself
    # Read holders and consumers before the live sessions: a session registers before it
    # takes a lease or reads, so anything seen here belongs to a session that the live
    # list read next either holds or that is truly gone.
    states = recovery.partition_state(client, plan)
    expired, live = sessions.reap(client, sub)
    done.sessions_removed = len(expired)
    live_set = set(live)
    idle_ms = plan.ack_timeout * 1000 if plan.shared else 0
    committed_offsets: Mapping[Position, str] = plan.offsets
    writes = any(s.group is None for s in states) or plan.shared
    if writes and offsets is not None:
        committed_offsets = offsets()
    # A reset moves generations (checked by the rebuild and advance below) before it touches the
    # database, and holds its lock until it is done: offsets read now are either the new
    # ones, or the lock is still there.
    writes = writes and not subscription_state.is_resetting_sync(client, sub)
    for partition, state in zip(plan.partitions, states, strict=True):
        if state.group is None:
            offset = committed_offsets.get(partition.position, BEGIN)
            if writes and recovery.rebuild_group(client, partition, sub, offset, state.generation):
                done.groups_rebuilt += 1
                logger.warning("rebuilt the group of %s on %s from %s", sub, partition, offset)
            continue
        if state.holder is not None and state.holder not in live_set:
            key = lease_key(partition.store_id, partition.partition, sub)
            done.leases_dropped += drop_if_held_by(client, key, state.holder)
        for name in state.consumers:
            if _retirable(name, state.consumer, live_set):
                done.consumers_deleted += recovery.retire_consumer(
                    client, partition, sub, name, idle_ms
                )
        if writes and plan.shared and _checkpoint(client, plan, partition, state):
            done.checkpoints += 1
    if done.sessions_removed or done.leases_dropped:
        control.publish_sync(client, sub, control.REBALANCE)
    return done


def _retirable(consumer: str, holding: str | None, live: set[str]) -> bool:
    """Whether to retire a consumer (once nothing is pending for it): an ordered one is
    "<session>:<lease token>", a shared one the session. A dead session's go; so do a live
    ordered session's for leases it no longer holds.
    """
    session, _, token = consumer.partition(":")
    return session not in live or (bool(token) and consumer != holding)


def _checkpoint(
    client: redis.Redis, plan: Plan, partition: Partition, state: recovery.PartitionState
) -> bool:
    """Record a shared subscription's low-water mark: the entry before the oldest pending
    one, or the last delivered when nothing is pending.
    """
    group: Any = state.group
    mark = group["last-delivered-id"].decode()
    if group["pending"]:
        oldest = recovery.oldest_pending(client, partition, plan.subscription)
        if oldest is not None:
            mark = previous_offset(oldest)
    if mark in ("0-0", BEGIN):
        return False
    if not recovery.advance(client, partition, plan.subscription, mark, state.generation):
        return False
    cursor = Cursor(partition.event_type, partition.partition, mark)
    committed.record_all({plan.subscription: [cursor]})
    return True


def _fresh_offsets(found: Subscription) -> dict[Position, str]:
    """The committed offsets in the database now ({} once the subscription is gone)."""
    if not Subscription.objects.filter(pk=found.pk).exists():
        return {}
    return committed.offsets(found)


def reclaim_all(client: redis.Redis, subscriptions: Sequence[Subscription]) -> Reclaimed:
    """`reclaim` every subscription; one's failure is logged and does not stop the rest."""
    total = Reclaimed()
    for found in subscriptions:
        plan = plans.of(found, with_offsets=False)
        try:
            total.add(reclaim(client, plan, functools.partial(_fresh_offsets, found)))
        except (redis.RedisError, DatabaseError) as error:
            logger.warning("reclaim of subscription %s failed: %s", plan.subscription, error)
            total.notes.append(f"{plan.subscription}: {error}")
    return total
