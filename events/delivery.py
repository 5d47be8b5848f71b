"""Delivery on one partition of an ordered subscription: its consumer group, committed
offset and the fenced steps on them. Every Redis command of subscription delivery is here.

One consumer group per (subscription, partition), named after the subscription; the
consumer is the stream session. Keys share the partition's hash tag (DESIGN section 3):

    ss:{et:<stream>:<p>}:log                 the partition's stream
    ss:{et:<stream>:<p>}:lease:<sub>         {session, token, sent}: owner and last offset sent
    ss:{et:<stream>:<p>}:committed:<sub>     the last committed offset (the DB keeps it too)
    ss:{et:<stream>:<p>}:delivered:<sub>     {consumer: the last offset sent to its client}
    ss:{et:<stream>:<p>}:sent:<sub>          shared mode: {offset: session} sent, not acked

Redis counts a delivery at every read and claim, also of entries a session read ahead or
claimed and never sent before it died. Delivery counts decide what becomes a dead letter,
so they must count sends only: a claim counts one more delivery only for entries their
holder sent (ordered: at or before its `delivered` mark, as sends go in offset order).

Acks and claims first check that the caller still holds the lease (fencing), in the same
script, so a session whose partition moved on cannot ack or claim anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.asyncio import Redis as AsyncRedis

from events.leases import Lease, lease_key
from events.lua import DEAD_LUA, GROUP_LUA_FUNCTION, POSITION_LUA
from events.streams import log_key, partition_tag
from events.topics import EVENT, Keep


def committed_key(stream: str, partition: int, subscription: str) -> str:
    return f"ss:{partition_tag(stream, partition)}:committed:{subscription}"


def dead_key(stream: str, partition: int, subscription: str) -> str:
    """Stream of dead letters set aside on a partition, until the job stores them."""
    return f"ss:{partition_tag(stream, partition)}:dead:{subscription}"


def delivered_key(stream: str, partition: int, subscription: str) -> str:
    """For each consumer (session) of the partition's group, the last offset it sent."""
    return f"ss:{partition_tag(stream, partition)}:delivered:{subscription}"


def sent_key(stream: str, partition: int, subscription: str) -> str:
    """Shared mode, where sends are not in offset order: a hash of the offsets sent and not
    yet acked, each to the session that sent it. A claim counts a delivery only for these.
    """
    return f"ss:{partition_tag(stream, partition)}:sent:{subscription}"


def generation_key(stream: str, partition: int, subscription: str) -> str:
    """A counter that every reset (and delete) of the subscription's delivery state on the
    partition moves: a background job that read it before compares it before writing.
    """
    return f"ss:{partition_tag(stream, partition)}:generation:{subscription}"


def resetting_key(subscription: str) -> str:
    """Set while a cursor reset runs: new sessions wait (409), as in Nakadi."""
    return f"ss:{{sub:{subscription}}}:resetting"


def control_channel(subscription: str) -> str:
    """Pub/sub channel of a subscription's sessions: commits, rebalance, reset, delete."""
    return f"ss:ctl:{subscription}"


CLAIM_CHUNK = 1000  # entries per claim script: bounded work, and far below Lua's unpack limit

# Make a newly acquired partition ready: committed offset, consumer group, `sent` baseline.
# A session that takes back a partition it lost (its lease lapsed) starts a new delivered
# mark; the old one, `<session>|old`, judges its own claim of what it held before.
# KEYS[1] lease, KEYS[2] log, KEYS[3] committed, KEYS[4] delivered, KEYS[5] sent
# ARGV[1] session, ARGV[2] group, ARGV[3] the committed offset the database has
# Returns the committed offset, or false when the lease is not the caller's.
PREPARE_LUA = (
    GROUP_LUA_FUNCTION
    + """
if redis.call('HGET', KEYS[1], 'session') ~= ARGV[1] then return false end
local before = redis.call('HGET', KEYS[4], ARGV[1])
if before then
  redis.call('HSET', KEYS[4], ARGV[1] .. '|old', before)
  redis.call('HDEL', KEYS[4], ARGV[1])
end
local committed = ensure_group(KEYS[2], KEYS[3], ARGV[2], ARGV[3], KEYS[4], KEYS[5])
redis.call('HSET', KEYS[1], 'sent', committed)
return committed
"""
)

# Claim, for the lease holder, what earlier owners left pending, in order.
# KEYS[1] lease, KEYS[2] log, KEYS[3] committed, KEYS[4] dead letters, KEYS[5] delivered;
# ARGV[1] session, ARGV[2] token, ARGV[3] group, ARGV[4] start id, ARGV[5] count,
# ARGV[6] max deliveries
# Returns {next start id ('0-0' when done), entries}, or false without the lease. Entries
# trimmed away meanwhile cannot be delivered, and entries at or before the committed
# offset were consumed already (left pending by a stale reader): both are acked. An entry
# its holder never sent (after the holder's delivered mark) keeps its delivery count: this
# claim replaces that holder's read or claim (what the claimer itself held, it held before
# it last took the partition: its `|old` mark judges it). One that this claim would
# deliver more than max_deliveries times becomes a dead letter.
CLAIM_LUA = (
    POSITION_LUA
    + DEAD_LUA
    + """
local lease = redis.call('HMGET', KEYS[1], 'session', 'token')
if lease[1] ~= ARGV[1] or lease[2] ~= ARGV[2] then return false end
local held = {}
for _, p in ipairs(redis.call('XPENDING', KEYS[2], ARGV[3], ARGV[4], '+', ARGV[5])) do
  held[p[1]] = p
end
local claimed = redis.call('XAUTOCLAIM', KEYS[2], ARGV[3], ARGV[1], 0, ARGV[4], 'COUNT', ARGV[5])
local done = claimed[3] or {}
local cms, cseq = position(redis.call('GET', KEYS[3]))
local marks, entries = {}, {}
for _, entry in ipairs(claimed[2]) do
  local ems, eseq = position(entry[1])
  if not (entry[2] and after(ems, eseq, cms, cseq)) then
    done[#done + 1] = entry[1]
  else
    local p = held[entry[1]]
    local n, sent = 1, false  -- (every claimed entry is in `held`: the same range, atomically)
    if p then
      local holder = p[2] == ARGV[1] and (p[2] .. '|old') or p[2]
      if marks[holder] == nil then marks[holder] = redis.call('HGET', KEYS[5], holder) end
      local mms, mseq = position(marks[holder])
      sent = not after(ems, eseq, mms, mseq)
      n = sent and p[4] + 1 or math.max(p[4], 1)
    end
    if n > tonumber(ARGV[6]) then
      dead(KEYS[4], ARGV[3], KEYS[2], entry, n - 1, 'max_deliveries')
    else
      if not sent then
        redis.call('XCLAIM', KEYS[2], ARGV[3], ARGV[1], 0, entry[1], 'RETRYCOUNT', n, 'JUSTID')
      end
      entries[#entries + 1] = entry
    end
  end
end
if #done > 0 then redis.call('XACK', KEYS[2], ARGV[3], unpack(done)) end
if claimed[1] == '0-0' then redis.call('HDEL', KEYS[5], ARGV[1] .. '|old') end
return {claimed[1], entries}
"""
)

# Record the last offset sent to the client of the lease holder, in its lease and as its
# delivered mark (kept after the lease: a claim reads it).
# KEYS[1] lease, KEYS[2] delivered; ARGV[1] session, ARGV[2] token, ARGV[3] offset.
# Returns 1, or 0 without the lease.
SENT_LUA = (
    POSITION_LUA
    + """
local lease = redis.call('HMGET', KEYS[1], 'session', 'token')
if lease[1] ~= ARGV[1] or lease[2] ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'sent', ARGV[3])
local sms, sseq = position(ARGV[3])
local dms, dseq = position(redis.call('HGET', KEYS[2], ARGV[1]))
if after(sms, sseq, dms, dseq) then redis.call('HSET', KEYS[2], ARGV[1], ARGV[3]) end
return 1
"""
)

# Commit a cursor: ack every entry pending for the lease holder up to it, and tell the
# subscription's sessions. (What earlier owners left pending is claimed, in order, before
# anything newer is read, so nothing of theirs lies below an offset sent to this one.)
# KEYS[1] lease, KEYS[2] log, KEYS[3] committed
# ARGV[1] session (stream id), ARGV[2] group, ARGV[3] offset, ARGV[4] channel,
# ARGV[5] partition name for the message ("<stream>:<p>")
# Returns 'committed', 'outdated' (at or before the committed offset: the keep-alive
# commit), 'not_owner' or 'undelivered' (after the last offset sent to this session).
COMMIT_LUA = (
    POSITION_LUA
    + """
local lease = redis.call('HMGET', KEYS[1], 'session', 'sent')
if lease[1] ~= ARGV[1] then return 'not_owner' end
local oms, oseq = position(ARGV[3])
local sms, sseq = position(lease[2])
if after(oms, oseq, sms, sseq) then return 'undelivered' end
local committed = redis.call('GET', KEYS[3])
local cms, cseq = position(committed)
local message = 'commit ' .. ARGV[1] .. ' ' .. ARGV[5] .. ' '
if not after(oms, oseq, cms, cseq) then
  redis.call('PUBLISH', ARGV[4], message .. (committed or 'BEGIN'))
  return 'outdated'
end
while true do
  local pending = redis.call('XPENDING', KEYS[2], ARGV[2], '-', ARGV[3], 500, ARGV[1])
  if #pending == 0 then break end
  local ids = {}
  for i, entry in ipairs(pending) do ids[i] = entry[1] end
  redis.call('XACK', KEYS[2], ARGV[2], unpack(ids))
  if #pending < 500 then break end
end
redis.call('SET', KEYS[3], ARGV[3])
redis.call('PUBLISH', ARGV[4], message .. ARGV[3])
return 'committed'
"""
)

# Give a partition back: release the lease (if still ours) and drop our consumer from the
# group, and its delivered mark, when nothing is pending for it (never DELCONSUMER with
# pending entries: the next owner's claim reads the mark).
# KEYS[1] lease, KEYS[2] log, KEYS[3] delivered; ARGV[1] session, ARGV[2] token,
# ARGV[3] group
RELEASE_LUA = """
local lease = redis.call('HMGET', KEYS[1], 'session', 'token')
if lease[1] == ARGV[1] and lease[2] == ARGV[2] then redis.call('DEL', KEYS[1]) end
local ok, pending = pcall(redis.call, 'XPENDING', KEYS[2], ARGV[3], '-', '+', 1, ARGV[1])
if ok and #pending == 0 then
  redis.pcall('XGROUP', 'DELCONSUMER', KEYS[2], ARGV[3], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1], ARGV[1] .. '|old')
end
return 1
"""


@dataclass(frozen=True)
class Claimed:
    next_start: str  # '0-0' once everything pending was claimed
    entries: list[Entry]


# (offset, encoded event) of a stream entry; the event is None when the subscription does
# not deliver it (its topic filter, or a replay for another subscription): it is skipped,
# but still advances the subscription.
Entry = tuple[str, bytes | None]


def entries_of(raw: Iterable[Any], keep: Keep | None) -> list[Entry]:
    """The entries of an XREADGROUP/XAUTOCLAIM reply."""
    out: list[Entry] = []
    for entry_id, fields in raw:
        if not fields:  # deleted meanwhile: nothing to deliver
            continue
        values = (
            fields
            if isinstance(fields, dict)
            else dict(zip(fields[::2], fields[1::2], strict=True))
        )
        kept = keep is None or keep(values)
        out.append((entry_id.decode(), values[EVENT] if kept else None))
    return out


class Delivery:
    """The delivery scripts, registered once on one asyncio client."""

    def __init__(self, client: AsyncRedis, keep: Keep | None = None) -> None:
        self._client = client
        self._keep = keep
        self._prepare = client.register_script(PREPARE_LUA)
        self._claim = client.register_script(CLAIM_LUA)
        self._sent = client.register_script(SENT_LUA)
        self._release = client.register_script(RELEASE_LUA)

    async def prepare(self, lease: Lease, db_offset: str) -> str | None:
        """Group and baseline of a newly acquired partition; its committed offset, or None
        when the lease was lost meanwhile.
        """
        stream, partition, subscription = lease.event_type, lease.partition, lease.subscription
        keys = [
            *_keys(lease),
            delivered_key(stream, partition, subscription),
            sent_key(stream, partition, subscription),
        ]
        committed = await self._prepare(
            keys=keys, args=[lease.session, lease.subscription, db_offset]
        )
        return None if committed is None else committed.decode()

    async def claim(
        self, lease: Lease, start: str, count: int, max_deliveries: int
    ) -> Claimed | None:
        """Up to `count` (at most CLAIM_CHUNK) entries that earlier owners left pending,
        from `start`, now ours; those it would deliver more than `max_deliveries` times
        become dead letters.
        """
        stream, partition, subscription = lease.event_type, lease.partition, lease.subscription
        dead = dead_key(stream, partition, subscription)
        delivered = delivered_key(stream, partition, subscription)
        count = min(count, CLAIM_CHUNK)
        reply = await self._claim(
            keys=[*_keys(lease), dead, delivered],
            args=[lease.session, lease.token, lease.subscription, start, count, max_deliveries],
        )
        if reply is None:
            return None
        return Claimed(reply[0].decode(), entries_of(reply[1], self._keep))

    async def read(self, reads: Sequence[tuple[Lease, int]]) -> list[list[Entry]]:
        """New entries for each (lease, count), in one round trip; never blocks (the hub
        says when there is more).

        A plain XREADGROUP, not fenced in Lua (that doubled Redis's work per event: every
        entry passed through the script). The session fences it in time instead: it reads
        only while its last lease extension still holds for READ_MARGIN seconds.
        """
        async with self._client.pipeline(transaction=False) as pipe:
            for lease, count in reads:
                key = log_key(lease.event_type, lease.partition)
                pipe.xreadgroup(lease.subscription, lease.session, {key: ">"}, count=count)
            replies = await pipe.execute()
        return [entries_of(reply[0][1], self._keep) if reply else [] for reply in replies]

    async def mark_sent(self, lease: Lease, offset: str) -> bool:
        """Record `offset` as sent, before the client sees it; False without the lease."""
        stream, partition, subscription = lease.event_type, lease.partition, lease.subscription
        keys = [
            lease_key(stream, partition, subscription),
            delivered_key(stream, partition, subscription),
        ]
        return bool(await self._sent(keys=keys, args=[lease.session, lease.token, offset]))

    async def release(self, lease: Lease) -> None:
        delivered = delivered_key(lease.event_type, lease.partition, lease.subscription)
        await self._release(
            keys=[*_keys(lease)[:2], delivered],
            args=[lease.session, lease.token, lease.subscription],
        )


def _keys(lease: Lease) -> list[str]:
    stream, partition, subscription = lease.event_type, lease.partition, lease.subscription
    return [
        lease_key(stream, partition, subscription),
        log_key(stream, partition),
        committed_key(stream, partition, subscription),
    ]


async def commit_all(
    client: AsyncRedis, calls: Sequence[tuple[str, str, str, int, str]]
) -> list[str]:
    """`commit` for each (subscription, session, stream, partition, offset), in order, in
    one round trip.
    """
    script = client.register_script(COMMIT_LUA)
    async with client.pipeline(transaction=False) as pipe:
        for subscription, session, stream, partition, offset in calls:
            await script(
                keys=_commit_keys(stream, partition, subscription),
                args=[
                    session,
                    subscription,
                    offset,
                    control_channel(subscription),
                    f"{stream}:{partition}",
                ],
                client=pipe,
            )
        results: list[bytes] = await pipe.execute()
    return [result.decode() for result in results]


def _commit_keys(stream: str, partition: int, subscription: str) -> list[str]:
    return [
        lease_key(stream, partition, subscription),
        log_key(stream, partition),
        committed_key(stream, partition, subscription),
    ]


async def commit(
    client: AsyncRedis, subscription: str, session: str, stream: str, partition: int, offset: str
) -> str:
    """Commit `offset` on a partition for a session."""
    return (await commit_all(client, [(subscription, session, stream, partition, offset)]))[0]


def forget(client: redis.Redis, subscription: str, partitions: Sequence[tuple[str, int]]) -> None:
    """A deleted subscription: its sessions close with `subscription_deleted`, and its
    leases, groups, committed offsets and dead letters not yet stored go.
    """
    client.publish(control_channel(subscription), "deleted")
    reset(client, subscription, partitions)
    client.delete(*(dead_key(stream, p, subscription) for stream, p in partitions))


def reset(client: redis.Redis, subscription: str, partitions: Sequence[tuple[str, int]]) -> None:
    """Forget all delivery state of the subscription on these partitions: leases, groups
    (with their pending entries), committed offsets and what was sent; the next session
    starts afresh from the database's cursors.
    """
    pipe = client.pipeline(transaction=False)
    for stream, partition in partitions:
        pipe.incr(generation_key(stream, partition, subscription))
        pipe.delete(
            lease_key(stream, partition, subscription),
            committed_key(stream, partition, subscription),
            delivered_key(stream, partition, subscription),
            sent_key(stream, partition, subscription),
        )
        pipe.execute_command("XGROUP", "DESTROY", log_key(stream, partition), subscription)
    pipe.execute(raise_on_error=False)
