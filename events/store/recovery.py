"""The Redis steps of recovery (the `reclaim` job, events/jobs/recovery.py): reading a
subscription's partitions, retiring consumers, rebuilding lost groups, moving a shared
subscription's low-water mark. Rebuilding a group and moving the low-water mark check the
partition's reset generation first, so a job that read the state before a cursor reset
never undoes it (retiring a consumer that has nothing pending cannot).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from events.core.plan import Partition, Plan
from events.store.keys import PartitionKeys, log_key
from events.store.lua import GROUP_LUA_FUNCTION, POSITION_LUA
from events.store.scripts import Script

# Delete a consumer that has nothing pending, with its charge mark and record of batches;
# make a dead shared consumer's pending entries claimable at once. KEYS[1] log, KEYS[2]
# charged, KEYS[3] batches; ARGV[1] group, ARGV[2] consumer, ARGV[3] idle ms to set on its
# pending entries ('0': leave them). Returns 1 when the consumer was deleted.
RETIRE_CONSUMER = Script("""
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
""")

# Only while no reset or delete happened since the job read the generation.
SAME_GENERATION_LUA = """
if (redis.call('GET', KEYS[#KEYS]) or '0') ~= ARGV[#ARGV] then return 0 end
"""

# Build a lost group from the committed offset: Redis's if it kept one, else the database's.
# KEYS[1] log, KEYS[2] committed, KEYS[3] charged, KEYS[4] sent, KEYS[5] batches,
# KEYS[6] generation; ARGV[1] group, ARGV[2] the database's offset, ARGV[3] the generation
# read. Returns 1 when the group was created.
REBUILD_GROUP = Script(
    GROUP_LUA_FUNCTION,
    SAME_GENERATION_LUA,
    """
local _, created = ensure_group(KEYS[1], KEYS[2], ARGV[1], ARGV[2], {KEYS[3], KEYS[4], KEYS[5]})
return created and 1 or 0
""",
)

# Move a shared subscription's committed offset forward (never back).
# KEYS[1] committed, KEYS[2] generation; ARGV[1] offset, ARGV[2] the generation read.
# Returns 1 when it moved.
ADVANCE = Script(
    POSITION_LUA,
    SAME_GENERATION_LUA,
    """
local ams, aseq = position(ARGV[1])
local cms, cseq = position(redis.call('GET', KEYS[1]))
if after(ams, aseq, cms, cseq) then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0
""",
)


@dataclass(frozen=True)
class PartitionState:
    """What the reclaim job reads of one partition before it acts."""

    holder: str | None  # the lease's session
    consumer: str | None  # the lease holder's consumer ("<session>:<token>")
    consumers: list[str]  # the group's consumers
    group: dict[str, Any] | None  # the group's XINFO, None when Redis has no such group
    generation: str


def partition_state(client: redis.Redis, plan: Plan) -> list[PartitionState]:
    """Each partition's state, in one round trip."""
    pipe = client.pipeline(transaction=False)
    for p in plan.partitions:
        keys = PartitionKeys(p.store_id, p.partition, plan.subscription)
        pipe.get(keys.generation)
        pipe.hmget(keys.lease, "session", "token")
        pipe.xinfo_consumers(keys.log, plan.subscription)
        pipe.xinfo_groups(keys.log)
    replies = pipe.execute(raise_on_error=False)
    out = []
    for i in range(len(plan.partitions)):
        generation, lease, members, infos = replies[4 * i : 4 * i + 4]
        holder, token = (v.decode() if isinstance(v, bytes) else None for v in lease)
        found = None
        if not isinstance(infos, Exception):
            found = next((g for g in infos if g["name"].decode() == plan.subscription), None)
        out.append(
            PartitionState(
                holder=holder,
                consumer=f"{holder}:{token}" if holder and token else None,
                consumers=[]
                if isinstance(members, Exception)
                else [m["name"].decode() for m in members],
                group=found,
                generation=generation.decode() if isinstance(generation, bytes) else "0",
            )
        )
    return out


def retire_consumer(
    client: redis.Redis, partition: Partition, subscription: str, consumer: str, idle_ms: int
) -> bool:
    """Delete a consumer that has nothing pending (True); else, with `idle_ms`, make what it
    has pending claimable by others at once.
    """
    k = PartitionKeys(partition.store_id, partition.partition, subscription)
    keys = [k.log, k.charged, k.batches]
    return bool(RETIRE_CONSUMER.run_sync(client, keys, [subscription, consumer, idle_ms]))


def rebuild_group(
    client: redis.Redis, partition: Partition, subscription: str, offset: str, generation: str
) -> bool:
    """Create the partition's lost group from `offset` (unless Redis kept a committed
    offset, or a reset moved the generation); True when it was created.
    """
    k = PartitionKeys(partition.store_id, partition.partition, subscription)
    keys = [k.log, k.committed, k.charged, k.sent, k.batches, k.generation]
    return bool(REBUILD_GROUP.run_sync(client, keys, [subscription, offset, generation]))


def oldest_pending(client: redis.Redis, partition: Partition, subscription: str) -> str | None:
    """The oldest entry pending in the partition's group, if any."""
    summary: Any = client.xpending(log_key(partition.store_id, partition.partition), subscription)
    oldest = summary["min"]
    return oldest.decode() if isinstance(oldest, bytes) else oldest


def advance(
    client: redis.Redis, partition: Partition, subscription: str, mark: str, generation: str
) -> bool:
    """Move the committed offset forward to `mark` (never back); True when it moved."""
    k = PartitionKeys(partition.store_id, partition.partition, subscription)
    return bool(ADVANCE.run_sync(client, [k.committed, k.generation], [mark, generation]))
