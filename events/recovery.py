"""Recovery after consumers or servers die, and after Redis loses state (DESIGN sections 6
and 7): the Redis work of the `reclaim` job, one subscription at a time.

- Sessions whose heartbeat expired are removed; leases their dead sessions hold are
  dropped, and a rebalance nudge lets the live sessions take those partitions at once.
- In shared mode, what dead sessions left unacknowledged becomes claimable at once.
- Consumers of dead sessions are deleted, but only once nothing is pending for them
  (their entries were claimed by a new owner, or acked).
- A consumer group Redis lost (a restart without persistence, a failover) is built again
  from the committed cursor in the database, never from `$`.
- Shared subscriptions have no cumulative commit: their durable cursor is the low-water
  mark (everything up to it acknowledged), kept here so that a rebuilt group starts there.

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

from events import committed, plans
from events.core.offsets import BEGIN, Cursor, previous_offset
from events.core.plan import Partition, Plan, Position
from events.models import Subscription
from events.store import sessions
from events.store.keys import (
    batches_key,
    charged_key,
    committed_key,
    control_channel,
    generation_key,
    lease_key,
    log_key,
    resetting_key,
    sent_key,
)
from events.store.lua import GROUP_LUA_FUNCTION, POSITION_LUA

logger = logging.getLogger(__name__)

# Drop a lease if the given (dead) session still holds it. KEYS[1] lease; ARGV[1] session.
DROP_LEASE_LUA = """
if redis.call('HGET', KEYS[1], 'session') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""

# Delete a consumer that has nothing pending, with its charge mark and record of batches;
# make a dead shared consumer's pending entries claimable at once. KEYS[1] log, KEYS[2]
# charged, KEYS[3] batches; ARGV[1] group, ARGV[2] consumer, ARGV[3] idle ms to set on its
# pending entries ('0': leave them). Returns 1 when the consumer was deleted.
RETIRE_CONSUMER_LUA = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1000, ARGV[2])
if #pending == 0 then
  redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
  redis.call('HDEL', KEYS[2], ARGV[2])
  if redis.call('LINDEX', KEYS[3], 0) == ARGV[2] then redis.call('DEL', KEYS[3]) end
  return 1
end
if ARGV[3] ~= '0' then
  for _, p in ipairs(pending) do
    if p[3] < tonumber(ARGV[3]) then
      redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, p[1], 'IDLE', ARGV[3], 'JUSTID')
    end
  end
end
return 0
"""

# Only while no reset or delete happened since the job read the generation.
_SAME_GENERATION = """
if (redis.call('GET', KEYS[#KEYS]) or '0') ~= ARGV[#ARGV] then return 0 end
"""

# Build a lost group from the committed offset: Redis's if it kept one, else the database's.
# KEYS[1] log, KEYS[2] committed, KEYS[3] charged, KEYS[4] sent, KEYS[5] batches,
# KEYS[6] generation; ARGV[1] group, ARGV[2] the database's offset, ARGV[3] the generation
# read. Returns 1 when the group was created.
REBUILD_GROUP_LUA = (
    GROUP_LUA_FUNCTION
    + _SAME_GENERATION
    + """
local _, created = ensure_group(KEYS[1], KEYS[2], ARGV[1], ARGV[2], {KEYS[3], KEYS[4], KEYS[5]})
return created and 1 or 0
"""
)

# Move a shared subscription's committed offset forward (never back).
# KEYS[1] committed, KEYS[2] generation; ARGV[1] offset, ARGV[2] the generation read.
# Returns 1 when it moved.
ADVANCE_LUA = (
    POSITION_LUA
    + _SAME_GENERATION
    + """
local ams, aseq = position(ARGV[1])
local cms, cseq = position(redis.call('GET', KEYS[1]))
if after(ams, aseq, cms, cseq) then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0
"""
)


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
    if client.exists(resetting_key(sub)):
        return done  # a cursor reset rebuilds everything itself
    # Read holders and consumers before the live sessions: a session registers before it
    # takes a lease or reads, so anything seen here belongs to a session that the live
    # list read next either holds or that is truly gone.
    holders, consumers, groups, generations = _partition_state(client, plan)
    expired, live = sessions.reap(client, sub)
    done.sessions_removed = len(expired)
    live_set = set(live)
    idle_ms = plan.ack_timeout * 1000 if plan.shared else 0
    committed_offsets: Mapping[Position, str] = plan.offsets
    writes = any(g is None for g in groups) or plan.shared
    if writes and offsets is not None:
        committed_offsets = offsets()
    # A reset moves generations (checked by every write below) before it touches the
    # database, and holds its lock until it is done: offsets read now are either the new
    # ones, or the lock is still there.
    writes = writes and not client.exists(resetting_key(sub))
    for partition, holder, group_consumers, group, generation in zip(
        plan.partitions, holders, consumers, groups, generations, strict=True
    ):
        if group is None:
            offset = committed_offsets.get(partition.position, BEGIN)
            if writes and _rebuild(client, partition, sub, offset, generation):
                done.groups_rebuilt += 1
                logger.warning("rebuilt the group of %s on %s from %s", sub, partition, offset)
            continue
        if holder is not None and holder not in live_set:
            key = lease_key(partition.stream, partition.partition, sub)
            done.leases_dropped += int(client.eval(DROP_LEASE_LUA, 1, key, holder))
        for name in group_consumers:
            # An ordered consumer is "<session>:<lease token>", a shared one the session.
            if name.partition(":")[0] not in live_set:
                keys = (
                    log_key(partition.stream, partition.partition),
                    charged_key(partition.stream, partition.partition, sub),
                    batches_key(partition.stream, partition.partition, sub),
                )
                retired = client.eval(RETIRE_CONSUMER_LUA, 3, *keys, sub, name, idle_ms)
                done.consumers_deleted += int(retired)
        if writes and plan.shared and _checkpoint(client, plan, partition, group, generation):
            done.checkpoints += 1
    if done.sessions_removed or done.leases_dropped:
        client.publish(control_channel(sub), "rebalance")
    return done


def _partition_state(
    client: redis.Redis, plan: Plan
) -> tuple[list[str | None], list[list[str]], list[dict[str, Any] | None], list[str]]:
    """Per partition: the lease holder, the group's consumers, the group's info (None
    when the group does not exist) and the reset generation.
    """
    pipe = client.pipeline(transaction=False)
    for p in plan.partitions:
        pipe.get(generation_key(p.stream, p.partition, plan.subscription))
        pipe.hget(lease_key(p.stream, p.partition, plan.subscription), "session")
        pipe.xinfo_consumers(log_key(p.stream, p.partition), plan.subscription)
        pipe.xinfo_groups(log_key(p.stream, p.partition))
    replies = pipe.execute(raise_on_error=False)
    generations = [g.decode() if isinstance(g, bytes) else "0" for g in replies[0::4]]
    holders: list[str | None] = []
    consumers: list[list[str]] = []
    groups: list[dict[str, Any] | None] = []
    for i in range(len(plan.partitions)):
        holder, members, infos = replies[4 * i + 1 : 4 * i + 4]
        holders.append(holder.decode() if isinstance(holder, bytes) else None)
        consumers.append(
            [] if isinstance(members, Exception) else [m["name"].decode() for m in members]
        )
        found = None
        if not isinstance(infos, Exception):
            for info in infos:
                if info["name"].decode() == plan.subscription:
                    found = info
        groups.append(found)
    return holders, consumers, groups, generations


def _rebuild(
    client: redis.Redis, partition: Partition, subscription: str, offset: str, generation: str
) -> bool:
    keys = [
        log_key(partition.stream, partition.partition),
        committed_key(partition.stream, partition.partition, subscription),
        charged_key(partition.stream, partition.partition, subscription),
        sent_key(partition.stream, partition.partition, subscription),
        batches_key(partition.stream, partition.partition, subscription),
        generation_key(partition.stream, partition.partition, subscription),
    ]
    return bool(client.eval(REBUILD_GROUP_LUA, len(keys), *keys, subscription, offset, generation))


def _checkpoint(
    client: redis.Redis, plan: Plan, partition: Partition, group: Any, generation: str
) -> bool:
    """Record a shared subscription's low-water mark: the entry before the oldest pending
    one, or the last delivered when nothing is pending.
    """
    log = log_key(partition.stream, partition.partition)
    last = group["last-delivered-id"].decode()
    mark = last
    if group["pending"]:
        summary: Any = client.xpending(log, plan.subscription)
        oldest = summary["min"]
        if oldest is not None:
            mark = previous_offset(oldest.decode() if isinstance(oldest, bytes) else oldest)
    if mark in ("0-0", BEGIN):
        return False
    keys = [
        committed_key(partition.stream, partition.partition, plan.subscription),
        generation_key(partition.stream, partition.partition, plan.subscription),
    ]
    if not client.eval(ADVANCE_LUA, 2, *keys, mark, generation):
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
