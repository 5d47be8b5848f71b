"""The Redis layout of event-type partitions, and every Redis command on them.

All keys of one partition share the hash tag `{et:<type>:<p>}`, so each multi-key step is
one Lua script on one slot (DESIGN section 3). Offsets are Redis entry ids `<ms>-<seq>`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import NoScriptError

from events.core.offsets import BEGIN, next_offset
from events.core.publishing import PartitionBatch, Retention
from events.store.connections import async_redis_client, redis_client
from events.store.keys import eid_key, log_key
from events.store.lua import NOW_MS_LUA, TRIM_LUA_FUNCTION

# Append a batch to one partition, once per eid.
# KEYS[1]   the partition's stream; KEYS[2..n+1] one de-duplication key per event, or KEYS[1]
#           again for an event without an eid (every key stays in the partition's slot)
# ARGV[1]   de-duplication window, seconds
# ARGV[2]   retention: max events (0: no length limit)
# ARGV[3]   retention: max age in ms (0: no time limit)
# ARGV[4..] n events, each the encoded JSON to store
# Returns how many events were new (the rest were stored before under the same eid).
# The marker is set first (one command, not GET then SET); should XADD then fail, the
# marker is removed again, so that a retry stores the event instead of calling it a
# duplicate. A script's writes are not rolled back: events before a failure stay stored.
PUBLISH_LUA = (
    NOW_MS_LUA
    + TRIM_LUA_FUNCTION
    + """
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
"""
)


PUBLISH_SHA = hashlib.sha1(PUBLISH_LUA.encode()).hexdigest()


async def append(
    stream: str, batches: Sequence[PartitionBatch], retention: Retention, dedup_seconds: int
) -> list[int | Exception]:
    """Store each batch on its partition in one pipelined round trip.

    Per batch: how many of its events were new, or the exception that stopped it (the
    events before the failing one are stored and marked, so a retry does not repeat them).
    """
    client = async_redis_client()
    calls = []
    for batch in batches:
        keys = [log_key(stream, batch.partition)]
        keys += [eid_key(stream, batch.partition, eid) if eid else keys[0] for eid in batch.eids]
        args = [dedup_seconds, retention.max_events, retention.max_age_ms, *batch.payloads]
        calls.append((keys, args))
    results = await _evalsha_all(client, calls)
    if any(isinstance(r, NoScriptError) for r in results):
        # Redis restarted or flushed its scripts: load it once, and run again exactly the
        # calls it refused (NOSCRIPT means the script did not run).
        await client.script_load(PUBLISH_LUA)
        retried = iter(
            await _evalsha_all(
                client,
                [c for c, r in zip(calls, results, strict=True) if isinstance(r, NoScriptError)],
            )
        )
        results = [next(retried) if isinstance(r, NoScriptError) else r for r in results]
    return [r if isinstance(r, Exception) else int(r) for r in results]


async def _evalsha_all(client: AsyncRedis, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
    """EVALSHA of the publish script for each call, in one pipeline (no SCRIPT EXISTS first)."""
    async with client.pipeline(transaction=False) as pipe:
        for keys, args in calls:
            pipe.evalsha(PUBLISH_SHA, len(keys), *keys, *args)
        results: list[Any] = await pipe.execute(raise_on_error=False)
    return results


@dataclass(frozen=True)
class PartitionInfo:
    partition: int
    oldest_available_offset: str
    newest_available_offset: str
    length: int


def partition_info(stream: str, partitions: Sequence[int]) -> list[PartitionInfo]:
    """Oldest and newest offsets and length of each partition, in one round trip.

    As in Nakadi, newest is the last event ever appended (BEGIN if none) and an empty
    partition has oldest after newest.
    """
    pipe = redis_client().pipeline(transaction=False)
    for p in partitions:
        pipe.xinfo_stream(log_key(stream, p))
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


def delete_partitions(stream: str, partition_count: int) -> None:
    """Drop every stream of an event type (its eid markers expire on their own)."""
    client: redis.Redis = redis_client()
    client.delete(*(log_key(stream, p) for p in range(partition_count)))
