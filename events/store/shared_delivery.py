"""The scripts of shared delivery on a partition: every session is a competing consumer of
the subscription's group, and each event is acknowledged on its own (the keys are in
events/store/keys.py).

What a session leaves unacknowledged past the ack timeout is claimed by another live
session (XCLAIM with a minimum idle time, so two sessions never both get it); an event
that a claim would deliver more than max_deliveries times becomes a dead letter instead
(or, by the subscription's policy, is skipped: acked and counted only).

Delivery counts count failures, as in ordered mode: each send is recorded with its batch
(`sent`: offset -> "<session> <batch number>") until its ack, and a claim charges a
delivery only to the events of the oldest batch their holder sent on the partition and did
not see acked in full: its client stopped in it. A session that leaves names the one batch
to charge (its oldest not acked on any partition) and forgets its other records.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis as AsyncRedis

from events.core.offsets import parse_offset
from events.core.plan import Partition, Plan
from events.store import control
from events.store.keys import PartitionKeys, control_channel
from events.store.lua import DEAD_LUA, GROUP_LUA_FUNCTION
from events.store.ordered_delivery import CLAIM_CHUNK
from events.store.scripts import Script, raise_first, run_all

ACKED = "acked"
NOT_PENDING = "not_pending"  # acked before, dead-lettered, or never delivered

# The group of a partition, from the committed offset (Redis's, else the database's).
# KEYS[1] log, KEYS[2] committed, KEYS[3] charged, KEYS[4] sent; ARGV[1] group,
# ARGV[2] the database's offset. Returns the committed offset.
GROUP = Script(
    GROUP_LUA_FUNCTION,
    """
return (ensure_group(KEYS[1], KEYS[2], ARGV[1], ARGV[2], {KEYS[3], KEYS[4]}))
""",
)

# Claim entries idle past the ack timeout: other sessions' (or also our own, when this is
# the only live session), oldest first. The sessions they are taken from are told, so that
# they stop waiting for those acks. Of each holder, the oldest batch it sent on the
# partition and did not see acked in full is charged a delivery: its client stopped in it.
# A holder that is gone (not among the live sessions the caller knows) gets no second
# charge for the rest it sent: those records are marked uncharged ("<session> ~"), also for
# the claims that take them later. What a holder read and never sent keeps its count. The
# claimed entries are not sent by their new holder yet.
# KEYS[1] log, KEYS[2] dead letters, KEYS[3] sent, KEYS[4] skipped; ARGV[1] session,
# ARGV[2] group, ARGV[3] ack timeout in ms, ARGV[4] count, ARGV[5] max deliveries, ARGV[6]
# '1' when alone, ARGV[7] channel, ARGV[8] partition name, ARGV[9] '1' to skip what would
# be a dead letter, ARGV[10..] the live sessions
# Returns {the ids claimed (dead letters and trimmed entries included), the entries to
# deliver, their delivery counts}.
CLAIM_IDLE = Script(
    DEAD_LUA,
    """
local scan = redis.call('XPENDING', KEYS[1], ARGV[2], 'IDLE', ARGV[3], '-', '+', ARGV[4] * 4)
local ids, counts, holder_of, owners = {}, {}, {}, {}
for _, p in ipairs(scan) do
  if #ids < tonumber(ARGV[4]) and (p[2] ~= ARGV[1] or ARGV[6] == '1') then
    ids[#ids + 1] = p[1]
    counts[p[1]], holder_of[p[1]] = p[4], p[2]
    owners[p[2]] = (owners[p[2]] or '') .. ' ' .. p[1]
  end
end
if #ids == 0 then return {{}, {}, {}} end
local live = {}
for i = 10, #ARGV do live[ARGV[i]] = true end
local records, heads = {}, {}
local all = redis.call('HGETALL', KEYS[3])
for i = 1, #all, 2 do
  local holder, batch = string.match(all[i + 1], '^(%S+) (%d+)$')
  if holder and owners[holder] then
    records[all[i]] = {holder, tonumber(batch)}
    if not heads[holder] or records[all[i]][2] < heads[holder] then
      heads[holder] = records[all[i]][2]
    end
  end
end
for offset, record in pairs(records) do
  if record[2] ~= heads[record[1]] and not live[record[1]] then
    redis.call('HSET', KEYS[3], offset, record[1] .. ' ~')
  end
end
local charged = {}
for _, id in ipairs(ids) do
  local record = records[id]
  charged[id] = record ~= nil and record[1] == holder_of[id] and record[2] == heads[record[1]]
end
for owner, offsets in pairs(owners) do
  if owner ~= ARGV[1] then
    redis.call('PUBLISH', ARGV[7], 'lost ' .. owner .. ' ' .. ARGV[8] .. offsets)
  end
end
redis.call('HDEL', KEYS[3], unpack(ids))
local out, out_counts, gone = {}, {}, {}
for _, entry in ipairs(redis.call('XCLAIM', KEYS[1], ARGV[2], ARGV[1], ARGV[3], unpack(ids))) do
  local n = charged[entry[1]] and counts[entry[1]] + 1 or counts[entry[1]]
  if not entry[2] then
    gone[#gone + 1] = entry[1]
  elseif n > tonumber(ARGV[5]) then
    dead(KEYS[2], ARGV[2], KEYS[1], entry, n - 1, 'max_deliveries', KEYS[4], ARGV[9] == '1')
  else
    if not charged[entry[1]] then  -- the XCLAIM above counted it once too often
      redis.call('XCLAIM', KEYS[1], ARGV[2], ARGV[1], 0, entry[1], 'RETRYCOUNT', n, 'JUSTID')
    end
    out[#out + 1] = entry
    out_counts[#out_counts + 1] = n
  end
end
if #gone > 0 then redis.call('XACK', KEYS[1], ARGV[2], unpack(gone)) end
return {ids, out, out_counts}
""",
)

# Acknowledge events, each only while it is pending (for whichever session has it now),
# and tell the sessions that had them.
# KEYS[1] log, KEYS[2] sent; ARGV[1] group, ARGV[2] channel, ARGV[3] partition name,
# ARGV[4..] offsets. Returns 'acked' or 'not_pending' per offset.
ACK = Script("""
local results, owners = {}, {}
for i = 4, #ARGV do
  redis.call('HDEL', KEYS[2], ARGV[i])
  local ok, p = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if ok and #p == 1 then
    redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
    owners[p[1][2]] = (owners[p[1][2]] or '') .. ' ' .. ARGV[i]
    results[#results + 1] = 'acked'
  else
    results[#results + 1] = 'not_pending'
  end
end
for owner, offsets in pairs(owners) do
  redis.call('PUBLISH', ARGV[2], 'ack ' .. owner .. ' ' .. ARGV[3] .. offsets)
end
return results
""")

# Just before a send: keep the entries still pending for the session, and restart their
# ack timeout (XCLAIM JUSTID to itself: the idle time restarts, the count does not move),
# so that the timeout counts from the send, not from the read; and record them as sent by
# the session in their batch, so that a claim can tell the oldest batch it did not see
# acked. (XCLAIM drops an entry that retention trimmed meanwhile from the pending list: it
# is neither kept nor recorded.)
# KEYS[1] log, KEYS[2] sent; ARGV[1] group, ARGV[2] session, ARGV[3..] pairs of an offset
# and its batch number. Returns the offsets kept.
REFRESH = Script("""
local kept = {}
for i = 3, #ARGV, 2 do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p == 1 and p[1][2] == ARGV[2]
      and #redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID') == 1 then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[2] .. ' ' .. ARGV[i + 1])
    kept[#kept + 1] = ARGV[i]
  end
end
return kept
""")

# A leaving session's entries become claimable by others at once, and only the batch it
# names stays chargeable: the oldest its client did not ack in full, on any partition
# (a claim charges it); the records of its other sends go. A session the server ends (a
# drain) names none. Then its consumer goes if nothing is left pending.
# KEYS[1] log, KEYS[2] sent; ARGV[1] session, ARGV[2] group, ARGV[3] ack timeout in ms,
# ARGV[4] the batch number to charge ('0': none). Returns how many entries it had pending.
GIVE_BACK = Script("""
local ok, pending = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[2], '-', '+', 10000, ARGV[1])
if not ok then return 0 end
local charged = ARGV[1] .. ' ' .. ARGV[4]
local prefix = ARGV[1] .. ' '
for _, p in ipairs(pending) do
  redis.call('XCLAIM', KEYS[1], ARGV[2], ARGV[1], 0, p[1], 'IDLE', ARGV[3], 'JUSTID')
  local record = redis.call('HGET', KEYS[2], p[1])
  if record and record ~= charged and string.sub(record, 1, #prefix) == prefix then
    redis.call('HDEL', KEYS[2], p[1])
  end
end
if #pending == 0 then redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[2], ARGV[1]) end
return #pending
""")


def _keys(plan: Plan, partition: Partition) -> PartitionKeys:
    return PartitionKeys(partition.store_id, partition.partition, plan.subscription)


class SharedDelivery:
    """The shared delivery steps, from a stream session's event loop."""

    def __init__(self, client: AsyncRedis) -> None:
        self._client = client

    async def prepare(self, plan: Plan, partition: Partition, db_offset: str) -> str:
        """Make sure the partition's group exists; returns the committed offset."""
        k = _keys(plan, partition)
        keys = [k.log, k.committed, k.charged, k.sent]
        committed: bytes = await GROUP(self._client, keys, [plan.subscription, db_offset])
        return committed.decode()

    async def claim_idle(
        self,
        plan: Plan,
        partition: Partition,
        session: str,
        count: int,
        alone: bool,
        live: Sequence[str] = (),
    ) -> tuple[list[str], list[Any], list[int]]:
        """Up to `count` (at most CLAIM_CHUNK) entries left unacked past the ack timeout,
        now `session`'s: the offsets it claimed, those to deliver (raw entries, as XCLAIM
        returns them; the others became dead letters, or were trimmed) and their delivery
        counts. `live`: the sessions the caller knows to be alive. With the plan's
        `skip_unprocessable`, what would be a dead letter is acked and counted only.
        """
        k = _keys(plan, partition)
        args: list[str | int] = [
            session,
            plan.subscription,
            plan.ack_timeout * 1000,
            min(count, CLAIM_CHUNK),
            plan.max_deliveries,
            "1" if alone else "0",
            control_channel(plan.subscription),
            control.partition_name(partition.store_id, partition.partition),
            "1" if plan.skip_unprocessable else "0",
            *live,
        ]
        keys = [k.log, k.dead, k.sent, k.skipped]
        claimed, entries, counts = await CLAIM_IDLE(self._client, keys, args)
        return [offset.decode() for offset in claimed], entries, counts

    async def refresh(
        self,
        plan: Plan,
        partition: Partition,
        session: str,
        offsets: Sequence[tuple[str, int]],
    ) -> set[str]:
        """Of (offset, batch number) pairs about to be sent, the offsets still pending for
        `session`, their ack timeout restarted now and recorded as sent in their batch.
        """
        k = _keys(plan, partition)
        pairs = [value for offset, batch in offsets for value in (offset, batch)]
        kept = await REFRESH(self._client, [k.log, k.sent], [plan.subscription, session, *pairs])
        return {offset.decode() for offset in kept}

    async def pending(
        self, plan: Plan, partitions: Sequence[Partition], session: str
    ) -> list[set[tuple[int, int]] | None]:
        """What is pending for `session` on each partition (None where Redis failed to
        say), in one round trip.
        """
        async with self._client.pipeline(transaction=False) as pipe:
            for partition in partitions:
                key = _keys(plan, partition).log
                pipe.xpending_range(key, plan.subscription, "-", "+", 10_000, consumername=session)
            replies = await pipe.execute(raise_on_error=False)
        return [
            None
            if isinstance(reply, Exception)
            else {parse_offset(entry["message_id"].decode()) for entry in reply}
            for reply in replies
        ]

    async def give_back(
        self, plan: Plan, partition: Partition, session: str, charged_batch: int = 0
    ) -> None:
        """Let other sessions claim at once what `session` still has pending; of what it
        sent, only the batch `charged_batch` (0: none) is charged a failed delivery.
        """
        k = _keys(plan, partition)
        args: list[str | int] = [session, plan.subscription, plan.ack_timeout * 1000, charged_batch]
        await GIVE_BACK(self._client, [k.log, k.sent], args)


async def ack(
    client: AsyncRedis, plan: Plan, items: Sequence[tuple[Partition, Sequence[str]]]
) -> list[list[str]]:
    """Acknowledge offsets, per partition, in one round trip; `acked` or `not_pending` per
    offset, in order.
    """
    channel = control_channel(plan.subscription)
    runs = []
    for partition, offsets in items:
        k = _keys(plan, partition)
        name = control.partition_name(partition.store_id, partition.partition)
        runs.append((ACK, [k.log, k.sent], [plan.subscription, channel, name, *offsets]))
    replies = raise_first(await run_all(client, runs))
    return [[r.decode() for r in reply] for reply in replies]
