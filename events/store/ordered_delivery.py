"""The scripts of ordered delivery on one partition: its consumer group, committed offset
and the fenced steps on them (the keys are in events/store/keys.py).

One consumer group per (subscription, partition), named after the subscription; the
consumer is "<session>:<lease token>", one per time a session holds the partition (so what
a session held before it lost the partition and took it back is judged as any earlier
owner's).

Delivery counts decide what becomes a dead letter, so they count failures, not reads: when
a session ends (or loses the partition) with batches sent and not committed, its client
stopped somewhere in the first of them, and only that batch's events are charged a
delivery. What was sent after it was, as far as anyone can tell, never processed, and what
was read ahead or claimed and never sent was never seen: both are delivered again without
a charge. Redis counts a delivery at every read and claim; the next owner's claim corrects
that count. The holder's batch ends (`batches`) become its charge mark (`charged`) when the
next session prepares the partition, and a claim charges a delivery to that holder's
entries up to the mark only. An entry charged before is sent again in a batch of its own,
so that a next failure names it alone and an event that shared a batch with a poison one is
never dead-lettered with it.

Acks and claims first check that the caller still holds the lease (fencing), in the same
script, so a session whose partition moved on cannot ack or claim anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis as AsyncRedis

from events.core.entries import Entry, Keep, entries_of
from events.store import control
from events.store.keys import PartitionKeys, control_channel, log_key
from events.store.leases import Lease
from events.store.lua import DEAD_LUA, GROUP_LUA_FUNCTION, POSITION_LUA
from events.store.scripts import Script, raise_first, run_all

CLAIM_CHUNK = 1000  # entries per claim script: bounded work, and far below Lua's unpack limit

# Close the time of the partition's last owner: the last offset of the first batch it sent
# after the committed offset becomes its charge mark (none: nothing of it is charged), and
# its record of batches goes. Keys: the batches list, the charge marks; `committed` the
# committed offset now.
CLOSE_TENURE_LUA = """
local function close_tenure(batches, charged, committed)
  local owner = redis.call('LINDEX', batches, 0)
  if not owner then return end
  local cms, cseq = position(committed)
  local mark = false
  for _, last in ipairs(redis.call('LRANGE', batches, 1, -1)) do
    local lms, lseq = position(last)
    if after(lms, lseq, cms, cseq) then mark = last break end
  end
  if mark then redis.call('HSET', charged, owner, mark) else redis.call('HDEL', charged, owner) end
  redis.call('DEL', batches)
end
"""

# Make a newly acquired partition ready: committed offset and consumer group; the time of
# its last owner closed (its charge mark), and a record of batches begun for the caller.
# KEYS[1] lease, KEYS[2] log, KEYS[3] committed, KEYS[4] charged, KEYS[5] sent,
# KEYS[6] batches; ARGV[1] session, ARGV[2] group, ARGV[3] the database's committed offset,
# ARGV[4] the caller's consumer (see `Lease.consumer`)
# Returns the committed offset, or false when the lease is not the caller's.
PREPARE = Script(
    POSITION_LUA,
    GROUP_LUA_FUNCTION,
    CLOSE_TENURE_LUA,
    """
if redis.call('HGET', KEYS[1], 'session') ~= ARGV[1] then return false end
local committed = ensure_group(KEYS[2], KEYS[3], ARGV[2], ARGV[3], {KEYS[4], KEYS[5], KEYS[6]})
close_tenure(KEYS[6], KEYS[4], committed)
redis.call('RPUSH', KEYS[6], ARGV[4])
redis.call('HSET', KEYS[1], 'sent', committed)
return committed
""",
)

# Claim, for the lease holder, what earlier owners left pending, in order.
# KEYS[1] lease, KEYS[2] log, KEYS[3] committed, KEYS[4] dead letters, KEYS[5] charged,
# KEYS[6] skipped; ARGV[1] session, ARGV[2] token, ARGV[3] group, ARGV[4] start id,
# ARGV[5] count, ARGV[6] max deliveries, ARGV[7] '1' to skip what would be a dead letter;
# the caller's consumer is "<session>:<token>"
# Returns {next start id ('0-0' when done), entries, their delivery counts}, or false
# without the lease. Entries trimmed away meanwhile cannot be delivered, and entries at or
# before the committed offset were consumed already (left pending by a stale reader): both
# are acked. An entry up to its holder's charge mark is charged the holder's delivery; any
# other keeps its count: this claim's delivery replaces the holder's read or claim. One that
# this claim would deliver more than max_deliveries times becomes a dead letter (or is
# skipped).
CLAIM = Script(
    POSITION_LUA,
    DEAD_LUA,
    """
local lease = redis.call('HMGET', KEYS[1], 'session', 'token')
if lease[1] ~= ARGV[1] or lease[2] ~= ARGV[2] then return false end
local consumer = ARGV[1] .. ':' .. ARGV[2]
local held = {}
for _, p in ipairs(redis.call('XPENDING', KEYS[2], ARGV[3], ARGV[4], '+', ARGV[5])) do
  held[p[1]] = p
end
local claimed = redis.call('XAUTOCLAIM', KEYS[2], ARGV[3], consumer, 0, ARGV[4], 'COUNT', ARGV[5])
local done = claimed[3] or {}
local cms, cseq = position(redis.call('GET', KEYS[3]))
local marks, entries, counts = {}, {}, {}
for _, entry in ipairs(claimed[2]) do
  local ems, eseq = position(entry[1])
  if not (entry[2] and after(ems, eseq, cms, cseq)) then
    done[#done + 1] = entry[1]
  else
    local p = held[entry[1]]
    local n, charge = 1, false  -- (every claimed entry is in `held`: the same range, atomically)
    if p then
      if marks[p[2]] == nil then marks[p[2]] = redis.call('HGET', KEYS[5], p[2]) or false end
      if marks[p[2]] then
        local mms, mseq = position(marks[p[2]])
        charge = not after(ems, eseq, mms, mseq)
      end
      n = charge and p[4] + 1 or math.max(p[4], 1)
    end
    if n > tonumber(ARGV[6]) then
      dead(KEYS[4], ARGV[3], KEYS[2], entry, n - 1, 'max_deliveries', KEYS[6], ARGV[7] == '1')
    else
      if not charge then
        redis.call('XCLAIM', KEYS[2], ARGV[3], consumer, 0, entry[1], 'RETRYCOUNT', n, 'JUSTID')
      end
      entries[#entries + 1] = entry
      counts[#counts + 1] = n
    end
  end
end
if #done > 0 then redis.call('XACK', KEYS[2], ARGV[3], unpack(done)) end
return {claimed[1], entries, counts}
""",
)

# Record batches about to be sent to the client of the lease holder: the last offset sent
# (in the lease, for the commit's check) and each batch's last offset (its record of
# batches, begun when it prepared the partition).
# KEYS[1] lease, KEYS[2] batches; ARGV[1] session, ARGV[2] token, ARGV[3] last offset,
# ARGV[4..] the last offset of each batch (none for entries only skipped).
# Returns 1, or 0 without the lease.
SENT = Script("""
local lease = redis.call('HMGET', KEYS[1], 'session', 'token')
if lease[1] ~= ARGV[1] or lease[2] ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'sent', ARGV[3])
if #ARGV > 3 then
  local consumer = ARGV[1] .. ':' .. ARGV[2]
  if redis.call('LINDEX', KEYS[2], 0) ~= consumer then  -- forgotten by a reset: begin anew
    redis.call('DEL', KEYS[2])
    redis.call('RPUSH', KEYS[2], consumer)
  end
  redis.call('RPUSH', KEYS[2], unpack(ARGV, 4))
end
return 1
""")

# Commit a cursor: ack every entry pending for the lease holder up to it, forget the
# batches it covers, and tell the session (through the subscription's control channel,
# unless the caller tells it directly). The lease is the only liveness check a commit
# needs: it expires with its session (events/store/leases.py). (What earlier owners left
# pending is claimed, in order, before anything newer is read, so nothing of theirs lies
# below an offset sent to this one.)
# KEYS[1] lease, KEYS[2] log, KEYS[3] committed, KEYS[4] batches
# ARGV[1] session id, ARGV[2] group, ARGV[3] offset, ARGV[4] channel ('' to publish
# nothing), ARGV[5] partition name for the message ("<store id>:<p>")
# Returns {'committed', the offset}, {'outdated', the committed offset} (the offset was at
# or before it: the keep-alive commit), {'not_owner'} or {'undelivered'} (after the last
# offset sent to this session).
COMMIT = Script(
    POSITION_LUA,
    """
local lease = redis.call('HMGET', KEYS[1], 'session', 'sent', 'token')
if lease[1] ~= ARGV[1] then return {'not_owner'} end
local consumer = ARGV[1] .. ':' .. lease[3]
local oms, oseq = position(ARGV[3])
local sms, sseq = position(lease[2])
if after(oms, oseq, sms, sseq) then return {'undelivered'} end
local committed = redis.call('GET', KEYS[3]) or 'BEGIN'
local cms, cseq = position(committed)
local function tell(offset)
  if ARGV[4] ~= '' then
    redis.call('PUBLISH', ARGV[4], 'commit ' .. ARGV[1] .. ' ' .. ARGV[5] .. ' ' .. offset)
  end
end
if not after(oms, oseq, cms, cseq) then
  tell(committed)
  return {'outdated', committed}
end
while true do
  local pending = redis.call('XPENDING', KEYS[2], ARGV[2], '-', ARGV[3], 500, consumer)
  if #pending == 0 then break end
  local ids = {}
  for i, entry in ipairs(pending) do ids[i] = entry[1] end
  redis.call('XACK', KEYS[2], ARGV[2], unpack(ids))
  if #pending < 500 then break end
end
redis.call('SET', KEYS[3], ARGV[3])
if redis.call('LLEN', KEYS[4]) > 1 and redis.call('LINDEX', KEYS[4], 0) == consumer then
  local tms, tseq = position(redis.call('LINDEX', KEYS[4], -1))
  if not after(tms, tseq, oms, oseq) then
    redis.call('LTRIM', KEYS[4], 0, 0)  -- it covers every batch (the usual commit)
  else
    local covered = 1  -- whole batches this commit covers (the list without its owner)
    while true do
      local lms, lseq = position(redis.call('LINDEX', KEYS[4], covered))
      if after(lms, lseq, oms, oseq) then break end
      covered = covered + 1
    end
    if covered > 1 then
      redis.call('LTRIM', KEYS[4], covered - 1, -1)
      redis.call('LSET', KEYS[4], 0, consumer)
    end
  end
end
tell(ARGV[3])
return {'committed', ARGV[3]}
""",
)

# Give a partition back: release the lease (if still ours) and drop our consumer from the
# group, with its charge mark, when nothing is pending for it (never DELCONSUMER with
# pending entries: the next owner's claim judges them). When the server ends the session
# (a drain, a lost session), its client did not fail: its record of batches goes, so that
# nothing is charged for it.
# KEYS[1] lease, KEYS[2] log, KEYS[3] charged, KEYS[4] batches; ARGV[1] session, ARGV[2]
# token, ARGV[3] group, ARGV[4] '1' to charge what the client did not commit, else '0'
# Returns 1.
RELEASE_PARTITION = Script("""
local lease = redis.call('HMGET', KEYS[1], 'session', 'token')
if lease[1] == ARGV[1] and lease[2] == ARGV[2] then redis.call('DEL', KEYS[1]) end
local consumer = ARGV[1] .. ':' .. ARGV[2]
local mine = redis.call('LINDEX', KEYS[4], 0) == consumer
local ok, pending = pcall(redis.call, 'XPENDING', KEYS[2], ARGV[3], '-', '+', 1, consumer)
if ok and #pending == 0 then
  redis.pcall('XGROUP', 'DELCONSUMER', KEYS[2], ARGV[3], consumer)
  redis.call('HDEL', KEYS[3], consumer)
  if mine then redis.call('DEL', KEYS[4]) end
elseif mine and ARGV[4] ~= '1' then
  redis.call('DEL', KEYS[4])
end
return 1
""")


@dataclass(frozen=True)
class Claimed:
    next_start: str  # '0-0' once everything pending was claimed
    entries: list[Entry]
    retried: frozenset[str] = frozenset()  # offsets charged a failed delivery before


def retried_of(raw: Sequence[Any], counts: Sequence[int]) -> frozenset[str]:
    """The offsets of claimed entries (a claim script's entries and their delivery counts)
    that were charged a failed delivery before: each is sent in a batch of its own.
    """
    return frozenset(
        entry[0].decode() for entry, count in zip(raw, counts, strict=True) if int(count) > 1
    )


class Delivery:
    """The ordered delivery steps, from a stream session's event loop."""

    def __init__(self, client: AsyncRedis, keep: Keep | None = None) -> None:
        self._client = client
        self._keep = keep

    async def prepare(self, lease: Lease, db_offset: str) -> str | None:
        """Group and baseline of a newly acquired partition; its committed offset, or None
        when the lease was lost meanwhile.
        """
        k = _keys(lease)
        keys = [k.lease, k.log, k.committed, k.charged, k.sent, k.batches]
        args = [lease.session, lease.subscription, db_offset, lease.consumer]
        committed = await PREPARE(self._client, keys, args)
        return None if committed is None else committed.decode()

    async def claim(
        self, lease: Lease, start: str, count: int, max_deliveries: int, skip: bool = False
    ) -> Claimed | None:
        """Up to `count` (at most CLAIM_CHUNK) entries that earlier owners left pending,
        from `start`, now ours; those it would deliver more than `max_deliveries` times
        become dead letters, or with `skip` are acked and counted only.
        """
        k = _keys(lease)
        count = min(count, CLAIM_CHUNK)
        reply = await CLAIM(
            self._client,
            [k.lease, k.log, k.committed, k.dead, k.charged, k.skipped],
            [
                *(lease.session, lease.token, lease.subscription, start, count, max_deliveries),
                "1" if skip else "0",
            ],
        )
        if reply is None:
            return None
        next_start, raw, counts = reply
        return Claimed(next_start.decode(), entries_of(raw, self._keep), retried_of(raw, counts))

    async def read(self, reads: Sequence[tuple[Lease, int]]) -> list[list[Entry]]:
        """New entries for each (lease, count), in one round trip; never blocks (the hub
        says when there is more).

        A plain XREADGROUP, not fenced in Lua (that doubled Redis's work per event: every
        entry passed through the script). The session fences it in time instead: it reads
        only while its last lease extension still holds for READ_MARGIN seconds.
        """
        async with self._client.pipeline(transaction=False) as pipe:
            for lease, count in reads:
                key = log_key(lease.store_id, lease.partition)
                pipe.xreadgroup(lease.subscription, lease.consumer, {key: ">"}, count=count)
            replies = await pipe.execute()
        return [entries_of(reply[0][1], self._keep) if reply else [] for reply in replies]

    async def mark_sent(self, lease: Lease, offset: str, batches: Sequence[str] = ()) -> bool:
        """Record, before the client sees them, the batches about to be sent (by their last
        offsets) and `offset`, the last sent (the last of `batches`, or entries only skipped);
        False without the lease.
        """
        k = _keys(lease)
        args: list[str | int] = [lease.session, lease.token, offset, *batches]
        return bool(await SENT(self._client, [k.lease, k.batches], args))

    async def release(self, lease: Lease, charge: bool = True) -> None:
        """Give the partition back. `charge`: what its client did not commit is charged a
        failed delivery (False when the server, not the client, ended the session).
        """
        k = _keys(lease)
        await RELEASE_PARTITION(
            self._client,
            [k.lease, k.log, k.charged, k.batches],
            [lease.session, lease.token, lease.subscription, "1" if charge else "0"],
        )


def _keys(lease: Lease) -> PartitionKeys:
    return PartitionKeys(lease.store_id, lease.partition, lease.subscription)


@dataclass(frozen=True)
class Committed:
    result: str  # committed | outdated | not_owner | undelivered
    offset: str | None  # the partition's committed offset now (committed and outdated)


async def commit_all(
    client: AsyncRedis,
    calls: Sequence[tuple[str, str, str, int, str]],
    *,
    publish: bool = True,
) -> list[Committed]:
    """`COMMIT` for each (subscription, session, store id, partition, offset), in order, in
    one round trip; `publish`: tell the session through the control channel (else the
    caller tells it).
    """
    runs = []
    for subscription, session, store_id, partition, offset in calls:
        k = PartitionKeys(store_id, partition, subscription)
        channel = control_channel(subscription) if publish else ""
        name = control.partition_name(store_id, partition)
        args = [session, subscription, offset, channel, name]
        runs.append((COMMIT, [k.lease, k.log, k.committed, k.batches], args))
    replies = raise_first(await run_all(client, runs))
    return [
        Committed(reply[0].decode(), reply[1].decode() if len(reply) > 1 else None)
        for reply in replies
    ]


async def commit(
    client: AsyncRedis, subscription: str, session: str, store_id: str, partition: int, offset: str
) -> str:
    """Commit `offset` on a partition for a session; returns the result."""
    calls = [(subscription, session, store_id, partition, offset)]
    return (await commit_all(client, calls))[0].result
