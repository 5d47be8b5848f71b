"""The logs of event-type partitions: appending (publishing, replays), trimming (retention),
reading their bounds, deleting them. Offsets are Redis entry ids `<ms>-<seq>`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from events.core.entries import EVENT, REPLAY_FOR
from events.core.offsets import BEGIN, next_offset
from events.core.publishing import PartitionBatch, Retention
from events.store import compaction
from events.store.connections import async_redis_client, redis_client
from events.store.keys import eid_key, log_key
from events.store.lua import NOW_MS_LUA, TRIM_LUA_FUNCTION
from events.store.scripts import Script, run_all, run_all_sync

logger = logging.getLogger(__name__)

TRIM_BATCH = 256  # partitions trimmed per pipelined round trip

# Append a batch to one partition, once per eid.
# KEYS[1]   the partition's log; KEYS[2..n+1] one de-duplication key per event, or KEYS[1]
#           again for an event without an eid (every key stays in the partition's slot)
# ARGV[1]   de-duplication window, seconds
# ARGV[2]   retention: max events (0: no length limit)
# ARGV[3]   retention: max age in ms (0: no time limit)
# ARGV[4..] n events, each the encoded JSON to store
# Returns how many events were new (the rest were stored before under the same eid).
# The marker is set first (one command, not GET then SET); should XADD then fail, the
# marker is removed again, so that a retry stores the event instead of calling it a
# duplicate. A script's writes are not rolled back: events before a failure stay stored.
PUBLISH = Script(
    NOW_MS_LUA,
    TRIM_LUA_FUNCTION,
    """
local ttl = tonumber(ARGV[1])
local stored = 0
for i = 4, #ARGV do
  local marker = KEYS[i - 2]
  local dedup = marker ~= KEYS[1]
  if not dedup or redis.call('SET', marker, '1', 'NX', 'EX', ttl) then
    local added = redis.pcall('XADD', KEYS[1], '*', 'e', ARGV[i])
    if type(added) == 'table' and added.err then
      if dedup then redis.call('DEL', marker) end
      return added
    end
    stored = stored + 1
  end
end
trim(KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3]))
return stored
""",
)

# Trim one partition by its retention. KEYS[1] the partition's log
# ARGV[1] max events (0: no length limit), ARGV[2] max age in ms (0: no time limit)
# Returns how many entries were trimmed (0 for a log that does not exist).
TRIM = Script(
    NOW_MS_LUA,
    TRIM_LUA_FUNCTION,
    "return trim(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))\n",
)


async def append(
    store_id: str, batches: Sequence[PartitionBatch], retention: Retention, dedup_seconds: int
) -> list[int | Exception]:
    """Store each batch on its partition in one pipelined round trip.

    Per batch: how many of its events were new, or the exception that stopped it (the
    events before the failing one are stored and marked, so a retry does not repeat them).
    """
    runs: list[tuple[Script, list[str], list[Any]]] = []
    for batch in batches:
        if batch.keys:  # a compacted type's
            runs.append(compaction.publish_run(store_id, batch, retention, dedup_seconds))
            continue
        keys = [log_key(store_id, batch.partition)]
        keys += [eid_key(store_id, batch.partition, eid) if eid else keys[0] for eid in batch.eids]
        args = [dedup_seconds, retention.max_events, retention.max_age_ms, *batch.payloads]
        runs.append((PUBLISH, keys, args))
    results = await run_all(async_redis_client(), runs)
    return [r if isinstance(r, Exception) else int(r) for r in results]


def append_replay(client: redis.Redis, store_id: str, partition: int, body: str, for_: str) -> str:
    """Append a dead letter's event again, for the one subscription `for_`; its new offset."""
    fields: Any = {EVENT: body.encode(), REPLAY_FOR: for_}
    offset: Any = client.xadd(log_key(store_id, partition), fields)
    return str(offset.decode())


# (store id, partition, max events, max age in ms) of a partition with a retention limit
RetentionTarget = tuple[str, int, int, int]


def trim_all(client: redis.Redis, targets: Sequence[RetentionTarget]) -> int:
    """Trim each partition to its limits; returns how many entries went.

    One pipelined round trip per `TRIM_BATCH` partitions. Idempotent: a second run right
    after finds nothing more to trim.
    """
    trimmed = 0
    for chunk in _chunks(targets, TRIM_BATCH):
        runs = [
            (TRIM, [log_key(s, p)], [max_events, max_age]) for s, p, max_events, max_age in chunk
        ]
        for reply in run_all_sync(client, runs):
            if isinstance(reply, Exception):
                raise reply
            trimmed += int(reply)
    if trimmed:
        logger.info("retention trimmed %s entries", trimmed)
    return trimmed


def _chunks(items: Sequence[RetentionTarget], size: int) -> Iterator[Sequence[RetentionTarget]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class PartitionInfo:
    partition: int
    oldest_available_offset: str
    newest_available_offset: str
    length: int


def partition_info(store_id: str, partitions: Sequence[int]) -> list[PartitionInfo]:
    """Oldest and newest offsets and length of each partition, in one round trip.

    As in Nakadi, newest is the last event ever appended (BEGIN if none) and an empty
    partition has oldest after newest.
    """
    pipe = redis_client().pipeline(transaction=False)
    for p in partitions:
        pipe.xinfo_stream(log_key(store_id, p))
    replies = pipe.execute(raise_on_error=False)
    infos = []
    for p, reply in zip(partitions, replies, strict=True):
        if isinstance(reply, redis.ResponseError):  # no such key: never written
            infos.append(PartitionInfo(p, "0-1", BEGIN, 0))
            continue
        if isinstance(reply, Exception):
            raise reply
        newest = reply["last-generated-id"].decode()
        first = reply.get("first-entry")
        oldest = first[0].decode() if first else next_offset(newest)
        infos.append(PartitionInfo(p, oldest, newest, reply["length"]))
    return infos


def delete_partitions(store_id: str, partition_count: int) -> None:
    """Drop every log of an event type, with its compaction's keys (its eid markers expire
    on their own).
    """
    client: redis.Redis = redis_client()
    client.delete(*(log_key(store_id, p) for p in range(partition_count)))
    client.delete(*compaction.partition_keys(store_id, partition_count))
