"""The readers' side of the process's hub (docs/architecture.md#readers): one blocking
XREAD over every partition log a local reader follows, whose entries go to every reader
as one shared `Chunk`, and the range reads of readers catching up, coalesced so that any
number of readers asking for the same range cost one Redis read. Once streaming, no
reader connection reads Redis on its own: Redis load grows with partitions, not with
connections.

The read continues from the last id it delivered, never from `$`, also after a Redis
error; a Redis whose data set changed (its epoch key is new) is reported to every reader.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis
import redis.asyncio as aioredis
from django.conf import settings

from events.core.entries import EVENT, REPLAY_FOR
from events.core.offsets import BEGIN, parse_offset, previous_offset
from events.store.blocking import BLOCK_MS, RETRY_SECONDS, BlockingReads
from events.store.compaction import recorded_trim
from events.store.connections import async_redis_client, loop_local
from events.store.keys import STORE_EPOCH_KEY, compaction_key_of_log

logger = logging.getLogger(__name__)

LIVE_COUNT = 1_000  # entries per partition per live read
RANGE_COUNT = 500  # entries per catch-up read: one size, so that equal reads coalesce
_CACHED_RANGES = 256


@dataclass(eq=False)
class Chunk:
    """Entries of one partition log that follow `after`: (offset, event or None). A replay
    meant for one subscription is None: readers skip it. `memo` keeps what readers make of
    the chunk (their encoded batches), so that it is made once for all of them.
    """

    key: str
    after: str
    last: str  # the id read up to (entries deleted meanwhile are not in `entries`)
    entries: Sequence[tuple[str, bytes | None]]
    memo: dict[Any, Any] = field(default_factory=dict)
    trimmed_to: str = "0-0"  # of a range read: the newest id the log had lost by then


class Follower(Protocol):
    def deliver(self, chunk: Chunk) -> None: ...

    def lost(self) -> None:
        """Redis lost its data set: positions may no longer mean what they did."""


def _entries(raw: Any) -> list[tuple[str, bytes | None]]:
    out: list[tuple[str, bytes | None]] = []
    for entry_id, fields in raw:
        if fields:  # an entry deleted meanwhile has none
            out.append((entry_id.decode(), None if REPLAY_FOR in fields else fields[EVENT]))
    return out


async def store_epoch(client: aioredis.Redis) -> str:
    """The id of Redis's current data set, made on first use: a Redis that comes back
    without its data has a new one.
    """
    async with client.pipeline(transaction=False) as pipe:
        pipe.set(STORE_EPOCH_KEY, secrets.token_hex(6), nx=True)
        pipe.get(STORE_EPOCH_KEY)
        _, value = await pipe.execute()
    return value.decode() if value else ""


@dataclass(frozen=True)
class LogBounds:
    last: str  # the newest id ever added, 0-0 if none
    trimmed_to: str  # the newest id removed by trimming, 0-0 if none


async def bounds(keys: Sequence[str]) -> list[LogBounds]:
    """What each log holds and has lost, in one round trip."""
    async with async_redis_client().pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.xinfo_stream(key)
            pipe.hget(compaction_key_of_log(key), "trimmed")
        replies = await pipe.execute(raise_on_error=False)
    out = []
    for reply, recorded in zip(replies[::2], replies[1::2], strict=True):
        if isinstance(reply, redis.ResponseError):  # never written
            out.append(LogBounds("0-0", "0-0"))
            continue
        if isinstance(reply, Exception):
            raise reply
        last = reply["last-generated-id"].decode()
        out.append(LogBounds(last, _trimmed_to(reply, recorded_trim(recorded))))
    return out


def _trimmed_to(info: Any, recorded: str | None = None) -> str:
    """The newest id that may have been removed: Redis 7.0 counts XDEL in
    max-deleted-entry-id but not trimming, which removes from the head: when fewer entries
    remain than were ever added, everything before the first may be gone (erring towards a
    reset where trimming stopped right at a reader's position). A compacted log deletes
    what compaction superseded, which is no loss to a reader: its own `recorded` trim point
    counts instead (events/store/compaction.py).
    """
    if recorded is not None:
        return recorded
    deleted = (info.get("max-deleted-entry-id") or b"0-0").decode()
    first = info.get("first-entry")
    added = info.get("entries-added")
    if added is not None and added <= info["length"]:
        return deleted  # nothing was trimmed
    head = previous_offset(first[0].decode()) if first else info["last-generated-id"].decode()
    head = "0-0" if head == BEGIN else head
    return head if parse_offset(head) > parse_offset(deleted) else deleted


class Tails(BlockingReads):
    name = "reader hub"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._followers: dict[str, set[Follower]] = {}
        self._last: dict[str, str] = {}
        self._ranges: dict[tuple[str, str], asyncio.Future[Chunk]] = {}
        self._cached: dict[tuple[str, str], Chunk] = {}
        self._epoch: str | None = None

    async def epoch(self) -> str:
        """The store epoch now (read at every reader's start: a Redis that lost its data
        has a new one, and what was cached of the old data set goes).
        """
        epoch = await store_epoch(async_redis_client())
        if epoch != self._epoch:
            self._moved(epoch)
        return epoch

    def _moved(self, epoch: str) -> None:
        """Redis's data set changed: what is cached of the old one goes, and every follower
        learns that its position may not mean what it did.
        """
        known, self._epoch = self._epoch, epoch
        self._cached.clear()
        if known is not None:
            for followers in list(self._followers.values()):
                for follower in list(followers):
                    follower.lost()

    def last(self, key: str) -> str:
        """The id up to which followers of `key` have been given its entries."""
        return self._last[key]

    async def follow(self, key: str, follower: Follower) -> str:
        """Give `follower` every entry of `key` after the id returned, until `unfollow`."""
        if key not in self._last:
            newest: Any = await async_redis_client().xrevrange(key, count=1)
            self._last.setdefault(key, newest[0][0].decode() if newest else "0-0")
        new = key not in self._followers
        self._followers.setdefault(key, set()).add(follower)
        self._start_or_interrupt(changed=new)
        return self._last[key]

    def unfollow(self, key: str, follower: Follower) -> None:
        followers = self._followers.get(key)
        if followers is not None:
            followers.discard(follower)
            if not followers:
                del self._followers[key]
                self._last.pop(key, None)

    async def read_range(self, key: str, after: str, fresh: bool = False) -> Chunk:
        """Up to RANGE_COUNT entries of `key` after `after`; equal reads share one, unless
        `fresh`: then the read is sent from now on.
        """
        wanted = (key, after)
        cached = self._cached.get(wanted)
        if cached is not None and not fresh:
            return cached
        pending = None if fresh else self._ranges.get(wanted)
        if pending is None:
            pending = asyncio.ensure_future(self._range(key, after))
            if not fresh:
                self._ranges[wanted] = pending
                pending.add_done_callback(lambda _: self._ranges.pop(wanted, None))
        return await asyncio.shield(pending)

    async def _range(self, key: str, after: str) -> Chunk:
        start = "-" if after == "0-0" else "(" + after
        async with async_redis_client().pipeline(transaction=False) as pipe:
            pipe.xrange(key, min=start, count=RANGE_COUNT)
            pipe.xinfo_stream(key)  # what trimming took meanwhile
            pipe.hget(compaction_key_of_log(key), "trimmed")
            raw, info, recorded = await pipe.execute(raise_on_error=False)
        if isinstance(raw, Exception):
            raise raw
        trimmed_to = (
            "0-0" if isinstance(info, Exception) else _trimmed_to(info, recorded_trim(recorded))
        )
        last = raw[-1][0].decode() if raw else after
        chunk = Chunk(key, after, last, _entries(raw), trimmed_to=trimmed_to)
        if len(raw) == RANGE_COUNT:  # a full range never changes (but by trimming): keep it
            if len(self._cached) >= _CACHED_RANGES:
                self._cached.pop(next(iter(self._cached)))
            self._cached[(key, after)] = chunk
        return chunk

    def _wanted(self) -> bool:
        return bool(self._followers)

    async def _after_error(self) -> None:
        await asyncio.sleep(RETRY_SECONDS)
        await self._check_epoch()

    async def _check_epoch(self) -> None:
        """After an error: if Redis came back without its data, tell every follower."""
        try:
            epoch = await store_epoch(async_redis_client())
        except (redis.RedisError, OSError):
            return  # not back yet: checked again after the next error
        if epoch != self._epoch:
            self._moved(epoch)

    async def _read_once(self, connection: aioredis.Redis) -> None:
        await self._blocking_id(connection)
        streams: dict[Any, Any] = {k: self._last[k] for k in self._followers}
        if not streams:
            return
        reply: Any = await connection.xread(streams, count=LIVE_COUNT, block=BLOCK_MS)
        for raw_key, raw in reply or ():
            key = raw_key.decode()
            followers = self._followers.get(key)
            if not followers or self._last.get(key) != streams[key]:
                continue  # no longer followed, or followed anew meanwhile
            chunk = Chunk(key, streams[key], raw[-1][0].decode(), _entries(raw))
            self._last[key] = chunk.last
            for follower in list(followers):
                follower.deliver(chunk)


# The running event loop's reader hub.
tails = loop_local(lambda: Tails(settings.REDIS_URL))
