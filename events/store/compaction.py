"""Log compaction (Nakadi's `cleanup_policy` `compact` and `compact_and_delete`): each
partition keeps at least the latest event of every `metadata.partition_compaction_key`.

Publishing a compacted type stores each event's key in its entry (`COMPACTION_KEY`) and the id
of the latest entry of each key in the partition's `latest` hash. The `retention` job then
examines the entries older than `COMPACTION_MIN_AGE_MS`, in order, in bounded steps (the
partition's `compaction` hash records the last entry examined, so each step and run goes
on where the last one stopped), and deletes (XDEL) those a later entry of the same key
superseded. An entry superseded after compaction examined it goes at once, as the newer
one is published (it is past the minimum age already). So a consumer that keeps up within
the minimum age sees every event; one that lags may see only the latest of each key, as on
Nakadi. `compact` ignores the retention time; `compact_and_delete` trims by it as well, and
the sweep forgets the keys whose latest entry retention removed.

Deleted entries leave holes that every reader skips (XRANGE, XREAD and XREADGROUP never
return them; a claim of a deleted pending entry acks it: see the claim scripts). Since
Redis counts XDEL in `max-deleted-entry-id`, which readers take for trimming, a compacted
log records where retention trimmed it in its own `compaction` hash (`trimmed`);
`recorded_trim` reads it for the reader hub.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import redis

from events.core.publishing import PartitionBatch, Retention
from events.store.keys import compaction_key, eid_key, latest_key, log_key
from events.store.lua import NOW_MS_LUA, POSITION_LUA, TRIM_LUA_FUNCTION
from events.store.scripts import Script, run_all_sync

logger = logging.getLogger(__name__)

COMPACT_BATCH = 256  # partitions compacted per pipelined round trip
COMPACT_COUNT = 1_000  # entries examined per partition and script call (and keys swept)
COMPACT_SECONDS = 20.0  # a run's rounds over partitions with more to examine

# Entry ids as strings: the one before `id` (the sequence is a 64-bit number; Lua's doubles
# hold the milliseconds exactly). A log's fields from XINFO STREAM (nil if there is no log).
# Recording where retention trimmed a compacted log (`mark_trimmed`: before its first entry
# left, or its last id when empty), first when the log begins to be compacted: what it lost
# before, while its type still only deleted by retention, counts as trimmed.
COMPACTION_LUA = """
local function previous_id(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  if seq ~= '0' then return ms .. '-' .. string.format('%.0f', tonumber(seq) - 1) end
  if ms == '0' then return '0-0' end
  return string.format('%.0f', tonumber(ms) - 1) .. '-18446744073709551615'
end
local function stream_info(log)
  if redis.call('EXISTS', log) == 0 then return nil end
  local info, out = redis.call('XINFO', 'STREAM', log), {}
  for i = 1, #info, 2 do out[info[i]] = info[i + 1] end
  return out
end
local function mark_trimmed(log, state)
  local first = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)[1]
  if first then
    redis.call('HSET', state, 'trimmed', previous_id(first[1]))
  else
    local info = stream_info(log)
    redis.call('HSET', state, 'trimmed', info and info['last-generated-id'] or '0-0')
  end
end
local function begin_compaction(log, state)
  if redis.call('HEXISTS', state, 'trimmed') == 1 then return end
  local info = stream_info(log)
  -- Redis 7 counts the entries ever added; 6.2 does not, and a log with entries may have
  -- lost older ones, so its first entry is taken as where it was trimmed.
  local added = info and info['entries-added']
  if info and ((added and added > info['length']) or (not added and info['length'] > 0)) then
    mark_trimmed(log, state)
  else
    redis.call('HSET', state, 'trimmed', '0-0')
  end
end
local function trim_compacted(log, state, max_events, max_age)
  local trimmed = trim(log, max_events, max_age)
  if trimmed > 0 then mark_trimmed(log, state) end
  return trimmed
end
"""

# Append a batch of a compacted type to one partition, once per eid (as PUBLISH in
# events/store/partitions.py), recording each event's key and the latest entry of it; the
# entry it supersedes goes at once if compaction examined it already.
# KEYS[1] log, KEYS[2] latest, KEYS[3] compaction; KEYS[4..n+3] one de-duplication key per
# event, or KEYS[1] for an event without an eid
# ARGV[1] de-duplication window, seconds; ARGV[2] retention: max events (0: none);
# ARGV[3] retention: max age in ms (0: none); ARGV[4..] n pairs: compaction key, event
# Returns how many events were new.
PUBLISH_COMPACTED = Script(
    NOW_MS_LUA,
    POSITION_LUA,
    TRIM_LUA_FUNCTION,
    COMPACTION_LUA,
    """
begin_compaction(KEYS[1], KEYS[3])
local sms, sseq = position(redis.call('HGET', KEYS[3], 'scanned'))
local ttl = tonumber(ARGV[1])
local stored = 0
for i = 4, #ARGV, 2 do
  local marker = KEYS[(i - 4) / 2 + 4]
  local dedup = marker ~= KEYS[1]
  if not dedup or redis.call('SET', marker, '1', 'NX', 'EX', ttl) then
    local added = redis.pcall('XADD', KEYS[1], '*', 'e', ARGV[i + 1], 'k', ARGV[i])
    if type(added) == 'table' and added.err then
      if dedup then redis.call('DEL', marker) end
      return added
    end
    local before = redis.call('HGET', KEYS[2], ARGV[i])
    redis.call('HSET', KEYS[2], ARGV[i], added)
    if before then
      local bms, bseq = position(before)
      if not after(bms, bseq, sms, sseq) then redis.call('XDEL', KEYS[1], before) end
    end
    stored = stored + 1
  end
end
trim_compacted(KEYS[1], KEYS[3], tonumber(ARGV[2]), tonumber(ARGV[3]))
return stored
""",
)

# One run of compaction on a partition: trim by retention (compact_and_delete), examine up to
# ARGV[2] entries older than the minimum age after the last one examined, and delete those
# a later entry of their key superseded; with retention, forget (a bounded HSCAN step) the
# keys whose latest entry retention removed.
# KEYS[1] log, KEYS[2] latest, KEYS[3] compaction; ARGV[1] minimum age in ms, ARGV[2] count,
# ARGV[3] retention: max events (0: none), ARGV[4] retention: max age in ms (0: none)
# Returns {entries examined, deleted, trimmed, keys forgotten}.
COMPACT = Script(
    NOW_MS_LUA,
    POSITION_LUA,
    TRIM_LUA_FUNCTION,
    COMPACTION_LUA,
    """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0, 0, 0} end
begin_compaction(KEYS[1], KEYS[3])
local max_events, max_age = tonumber(ARGV[3]), tonumber(ARGV[4])
local trimmed = trim_compacted(KEYS[1], KEYS[3], max_events, max_age)
local examined, deleted, forgotten = 0, 0, 0
local upto = now_ms() - tonumber(ARGV[1])
if upto > 0 then
  local scanned = redis.call('HGET', KEYS[3], 'scanned')
  local start = scanned and ('(' .. scanned) or '-'
  local upto_id = string.format('%.0f', upto)
  local entries = redis.call('XRANGE', KEYS[1], start, upto_id, 'COUNT', ARGV[2])
  for _, entry in ipairs(entries) do
    local fields = entry[2]
    for j = 1, #fields, 2 do
      if fields[j] == 'k' then
        local latest = redis.call('HGET', KEYS[2], fields[j + 1])
        local ems, eseq = position(entry[1])
        if latest then
          local lms, lseq = position(latest)
          if after(lms, lseq, ems, eseq) then
            deleted = deleted + redis.call('XDEL', KEYS[1], entry[1])
          end
        end
      end
    end
  end
  examined = #entries
  if examined > 0 then redis.call('HSET', KEYS[3], 'scanned', entries[examined][1]) end
end
if max_events > 0 or max_age > 0 then
  local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
  local fms, fseq = 0, 0
  if first then fms, fseq = position(first[1]) end
  local cursor = redis.call('HGET', KEYS[3], 'sweep') or '0'
  local swept = redis.call('HSCAN', KEYS[2], cursor, 'COUNT', ARGV[2])
  local found = swept[2]
  for j = 1, #found, 2 do
    local ims, iseq = position(found[j + 1])
    if not first or after(fms, fseq, ims, iseq) then
      forgotten = forgotten + redis.call('HDEL', KEYS[2], found[j])
    end
  end
  redis.call('HSET', KEYS[3], 'sweep', swept[1])
end
return {examined, deleted, trimmed, forgotten}
""",
)


def publish_run(
    store_id: str, batch: PartitionBatch, retention: Retention, dedup_seconds: int
) -> tuple[Script, list[str], list[Any]]:
    """The (script, keys, args) that stores a compacted type's batch on its partition."""
    p = batch.partition
    keys = [log_key(store_id, p), latest_key(store_id, p), compaction_key(store_id, p)]
    keys += [eid_key(store_id, p, eid) if eid else keys[0] for eid in batch.eids]
    args: list[Any] = [dedup_seconds, retention.max_events, retention.max_age_ms]
    for key, payload in zip(batch.keys, batch.payloads, strict=True):
        args += [key, payload]
    return PUBLISH_COMPACTED, keys, args


# (store id, partition, max events, max age in ms) of a compacted partition; the limits are
# 0 for `compact` (kept forever, but for compaction)
CompactionTarget = tuple[str, int, int, int]


def compact_all(
    client: redis.Redis, targets: Sequence[CompactionTarget], min_age_ms: int
) -> dict[str, int]:
    """Compact each partition: what it examined, deleted (compacted), trimmed (retention)
    and forgot (keys whose latest event retention removed).

    Each script call examines at most `COMPACT_COUNT` entries of a partition (Redis stays
    responsive); one pipelined round trip per `COMPACT_BATCH` partitions. Partitions with
    more to examine get further rounds until `COMPACT_SECONDS` have passed; the next run
    goes on where this one stopped, and a run right after another finds nothing to do.
    """
    totals = {"examined": 0, "compacted": 0, "trimmed": 0, "forgotten": 0}
    deadline = time.monotonic() + COMPACT_SECONDS
    pending = list(targets)
    while pending:
        behind: list[CompactionTarget] = []
        for start in range(0, len(pending), COMPACT_BATCH):
            chunk = pending[start : start + COMPACT_BATCH]
            runs = [
                (
                    COMPACT,
                    [log_key(s, p), latest_key(s, p), compaction_key(s, p)],
                    [min_age_ms, COMPACT_COUNT, max_events, max_age],
                )
                for s, p, max_events, max_age in chunk
            ]
            for target, reply in zip(chunk, run_all_sync(client, runs), strict=True):
                if isinstance(reply, redis.ResponseError):
                    # One partition's failure must not stop the others' compaction.
                    logger.error("compaction of %s/%s failed: %s", target[0], target[1], reply)
                    continue
                if isinstance(reply, Exception):
                    raise reply
                for name, value in zip(totals, reply, strict=True):
                    totals[name] += int(value)
                if int(reply[0]) >= COMPACT_COUNT:
                    behind.append(target)
        if time.monotonic() >= deadline:
            break
        pending = behind
    if totals["compacted"] or totals["trimmed"]:
        logger.info("compaction: %s", totals)
    return totals


def partition_keys(store_id: str, partition_count: int) -> Iterator[str]:
    """The compaction keys of every partition of a type (for its deletion)."""
    for p in range(partition_count):
        yield latest_key(store_id, p)
        yield compaction_key(store_id, p)


def recorded_trim(reply: Any) -> str | None:
    """A compacted log's recorded trim point from an HGET of its `compaction` hash's
    `trimmed`; None for a log that is not compacted (Redis's own record then counts).
    """
    return reply.decode() if isinstance(reply, bytes) else None
