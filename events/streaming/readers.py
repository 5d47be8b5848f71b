"""A reader: one connection that gets every event of the types it reads, in order per
partition, from the process's reader hub (`events/store/tails.py`;
docs/architecture.md#readers).

The hub hands every reader the same `Chunk` of new entries; what a reader at a given
position writes for it (its batches, their SSE ids) is made once for all readers there.
A reader that is behind catches up through the hub's coalesced range reads, then follows
live. What the server still holds for its client may not pass `READER_BUFFER_BYTES`, or
the stream ends with `slow_consumer`; the client resumes from its last position.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from events.core import framing, positions
from events.core.offsets import parse_offset
from events.core.positions import UNREAD, TypePosition, format_position
from events.core.stream_params import StreamParams
from events.core.topics import matcher, topic_of
from events.store.keys import log_key
from events.store.tails import Chunk, tails
from events.streaming.reader_start import END, ReadType, Start

Send = Callable[[bytes], Awaitable[None]]
Buffered = Callable[[], int]  # bytes the server still holds for the client
Write = Callable[[bytes], bool]  # writes at once, from any code; False: the client is gone

# The reasons a reader's stream ends, beyond the session reasons of framing.close_info.
SLOW_CONSUMER = "slow_consumer"
TOKEN_EXPIRED = "token_expired"
STREAM_TIMEOUT = "stream_timeout"
STREAM_LIMIT = "stream_limit"
KEEP_ALIVE_LIMIT = "keep_alive_limit"
GONE = "gone"  # the client left


@dataclass(frozen=True)
class ReaderOptions:
    params: StreamParams
    topics: tuple[str, ...] = ()
    sse: bool = False
    buffer_limit: int = 1 << 20
    expires_at: float | None = None  # wall clock; the stream's token expires then


# A batch cut from a chunk: the offset of its last event, its events' ids, its events, its JSON.
Cut = tuple[str, list[str], list[bytes], bytes]
MEMO_LIMIT = 8  # encodings kept per chunk: readers with other batch limits or topics make their own
INBOX_LIMIT = 1_000  # chunks a reader may have waiting: more, and it is far behind


class Reader:
    def __init__(self, types: Sequence[ReadType], start: Start, epoch: str, options: ReaderOptions):
        self.options = options
        self._epoch = epoch
        self._types = list(types)
        self._slots = [
            (t.name, p, log_key(t.store_id, p))
            for t in types
            for p in range(t.partition_count)
            if start.offsets[(t.name, p)] != UNREAD
        ]
        self._index = {key: i for i, (_, _, key) in enumerate(self._slots)}
        self._offsets = {
            (t.name, p): start.offsets[(t.name, p)] for t in types for p in range(t.partition_count)
        }
        self._live = [False] * len(self._slots)
        self._resets = start.resets
        self._inbox: deque[Chunk] | None = None  # chunks for the slow path, made when needed
        self._wakeup: asyncio.Future[None] | None = None
        self._match = matcher(options.topics) if options.topics else None
        self._sent = 0
        self._active_at = 0.0  # loop time of the last batch sent
        self._position: str | None = None  # position() as text; None once offsets moved
        self._write: Write | None = None
        self._buffered: Buffered = lambda: 0
        self.reason: str | None = None
        self.id = str(uuid.uuid4())
        self._ended: asyncio.Future[None] | None = None  # made when the drain waits for it
        self._done = False

    # -- as a local session: the drain closes readers too --------------------------------

    def shutdown(self) -> None:
        self.stop("shutdown")

    async def closed(self) -> None:
        if not self._done:
            if self._ended is None:
                self._ended = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._ended)

    def on_commit(self, store_id: str, partition: int, offset: str) -> None:
        pass  # readers do not commit

    # -- called by the hub --------------------------------------------------------------

    def deliver(self, chunk: Chunk) -> None:
        if not self._live[self._index[chunk.key]] or self.reason is not None:
            return
        if not self._inbox and self._write_now(chunk):
            return
        if self._inbox is None:
            self._inbox = deque()
        if len(self._inbox) >= INBOX_LIMIT:
            self.stop(SLOW_CONSUMER)
            return
        self._inbox.append(chunk)
        self._wake()

    def _write_now(self, chunk: Chunk) -> bool:
        """Write a live chunk at once, from the hub, without waking this reader's task;
        False when it must take the slow path (no direct writer, a stream limit, or a
        client too far behind)."""
        write = self._write
        if write is None or self.options.params.stream_limit:
            return False
        name, p, _ = self._slots[self._index[chunk.key]]
        offset = self._offsets[(name, p)]
        if chunk.after != offset and not positions.after(chunk.last, offset):
            return True  # nothing new for this reader
        position = self.position() if self.options.sse else None
        key = ("written", offset, position, *self._memo_key(chunk, offset))
        made = chunk.memo.get(key)
        if made is None:
            made = self._make(chunk, name, p, offset)
            if len(chunk.memo) < MEMO_LIMIT:
                chunk.memo[key] = made
        data, count, last, position = made
        if data and len(data) + self._buffered() > self.options.buffer_limit:
            return False  # the slow path cuts it where the budget ends
        if data and not write(data):
            self.stop(GONE)
            return True
        self._offsets[(name, p)] = last
        self._position = position
        if count:
            self._sent += count
            self._active_at = time.monotonic()  # the event loop's clock
        return True

    def _make(self, chunk: Chunk, name: str, p: int, offset: str) -> tuple[bytes, int, str, str]:
        """What every reader at this position writes for the chunk: the frames, how many
        events, and the offset and position after them."""
        frames = []
        count = 0
        for last, _, events, encoded in self._cuts(chunk, name, p, offset):
            frames.append(self._frame(encoded, (name, p), last))
            count += len(events)
        before = self._offsets[(name, p)]
        self._offsets[(name, p)] = chunk.last
        self._position = None
        after = self.position()
        self._offsets[(name, p)] = before
        self._position = None
        return b"".join(frames), count, chunk.last, after

    def lost(self) -> None:
        self.stop(positions.DATA_LOST)

    def stop(self, reason: str) -> None:
        """End the stream with `reason` (the client left, the server drains)."""
        if self.reason is None:
            self.reason = reason
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    # -- the stream ---------------------------------------------------------------------

    def position(self) -> str:
        """The position after everything sent: the SSE `id:` to resume from."""
        if self._position is None:
            self._position = self._format()
        return self._position

    def _format(self) -> str:
        return format_position(
            self._epoch,
            [
                TypePosition(
                    t.name,
                    t.store_id,
                    tuple(self._offsets[(t.name, p)] for p in range(t.partition_count)),
                )
                for t in self._types
            ],
        )

    async def run(self, send: Send, buffered: Buffered, write: Write | None = None) -> str:
        """Send batches until the stream ends; returns why it ended. With `write`, the hub
        writes live batches itself (see `_write_now`).
        """
        self._buffered = buffered
        hub = tails()
        try:
            for i, (name, p, key) in enumerate(self._slots):
                newest = await hub.follow(key, self)
                if self._offsets[(name, p)] == END:
                    self._offsets[(name, p)] = newest
                self._live[i] = self._offsets[(name, p)] == newest
            self._position = None
            if self.options.sse:
                for reason, where in self._resets:
                    await send(self._reset_message(reason, where))
            self._write = write
            return await self._loop(send, buffered)
        finally:
            for _, _, key in self._slots:
                hub.unfollow(key, self)
            self._done = True
            if self._ended is not None and not self._ended.done():
                self._ended.set_result(None)

    async def _loop(self, send: Send, buffered: Buffered) -> str:
        loop = asyncio.get_running_loop()
        params = self.options.params
        deadline = loop.time() + params.stream_timeout
        if self.options.expires_at is not None:
            expiry = loop.time() + self.options.expires_at - time.time()
        else:
            expiry = float("inf")
        self._active_at = loop.time()
        keep_alive_due = self._active_at + params.batch_flush_timeout
        idle_rounds = 0
        while self.reason is None:
            while self._inbox and self.reason is None:
                await self._send_chunk(self._inbox.popleft(), send, buffered)
            behind = [i for i, live in enumerate(self._live) if not live]
            for i in behind:
                if self.reason is None:
                    await self._catch_up(i, send, buffered)
            if self._active_at + params.batch_flush_timeout > keep_alive_due:
                idle_rounds = 0  # batches went out (also written by the hub): no keep-alive
                keep_alive_due = self._active_at + params.batch_flush_timeout
            now = loop.time()
            if self.reason is not None:
                break
            if now >= expiry:
                return self._end(TOKEN_EXPIRED)
            if now >= deadline:
                return self._end(STREAM_TIMEOUT)
            if now >= keep_alive_due:
                idle_rounds += 1
                if params.stream_keep_alive_limit and idle_rounds > params.stream_keep_alive_limit:
                    return self._end(KEEP_ALIVE_LIMIT)
                await send(self._keep_alive())
                keep_alive_due = now + params.batch_flush_timeout
                continue
            if behind or self._inbox:
                continue
            self._wakeup = loop.create_future()
            timer = loop.call_at(min(expiry, deadline, keep_alive_due), self._wake)
            try:
                await self._wakeup
            finally:
                timer.cancel()
                self._wakeup = None
        return self.reason or GONE

    def _end(self, reason: str) -> str:
        self.reason = reason
        return reason

    async def _catch_up(self, i: int, send: Send, buffered: Buffered) -> None:
        name, p, key = self._slots[i]
        hub = tails()
        offset = self._offsets[(name, p)]
        chunk = await hub.read_range(key, offset)
        if not chunk.entries and chunk.last == offset:
            # Nothing stored after it as far as that read saw. Up to where the hub has
            # delivered, a read sent from now on (never one joined that was sent earlier)
            # sees everything; if it too finds nothing, the reader follows live from there.
            newest = hub.last(key)
            if not positions.after(newest, offset):
                self._live[i] = True
                return
            chunk = await hub.read_range(key, offset, fresh=True)
            if not chunk.entries and chunk.last == offset:
                self._offsets[(name, p)] = newest
                self._position = None
                self._live[i] = True
                return
        if positions.after(chunk.trimmed_to, offset):  # retention overtook this reader
            self._offsets[(name, p)] = chunk.trimmed_to
            self._position = None
            if not self.options.sse:  # Nakadi's client learns it from its next connect (412)
                self.reason = positions.TRIMMED
                return
            await send(self._reset_message(positions.TRIMMED, [(name, p)]))
            return
        await self._send_chunk(chunk, send, buffered)

    async def _send_chunk(self, chunk: Chunk, send: Send, buffered: Buffered) -> None:
        name, p, _ = self._slots[self._index[chunk.key]]
        offset = self._offsets[(name, p)]
        if not positions.after(chunk.last, offset):
            return  # nothing new for this reader
        cuts = self._cuts(chunk, name, p, offset)
        out: list[bytes] = []
        held = buffered()
        budget = self.options.buffer_limit - held
        limit = self.options.params.stream_limit
        for last, ids, events, encoded in cuts:
            if limit and self._sent + len(events) > limit:
                keep = limit - self._sent
                events, last = events[:keep], ids[keep - 1]
                encoded = framing.reader_batch(name, p, last, events)
            frame = self._frame(encoded, (name, p), last)
            budget -= len(frame)
            if budget < 0 and (out or held):  # one batch always fits an idle client
                self.reason = SLOW_CONSUMER
                break
            out.append(frame)
            self._sent += len(events)
            self._offsets[(name, p)] = last
            self._position = None
            if limit and self._sent >= limit:
                self.reason = STREAM_LIMIT
                break
        else:
            self._offsets[(name, p)] = chunk.last  # entries skipped at the end advance too
            self._position = None
        if out:
            self._active_at = asyncio.get_running_loop().time()
            await send(b"".join(out))

    def _memo_key(self, chunk: Chunk, offset: str) -> tuple[int, int, tuple[str, ...]]:
        """What the batches cut from a chunk depend on: where the reader stands in it, its
        batch limit and its topics.
        """
        start = 0
        if chunk.after != offset:
            mark = parse_offset(offset)
            while start < len(chunk.entries) and parse_offset(chunk.entries[start][0]) <= mark:
                start += 1
        return (start, self.options.params.batch_limit, self.options.topics)

    def _cuts(self, chunk: Chunk, name: str, partition: int, offset: str) -> list[Cut]:
        memo_key = self._memo_key(chunk, offset)
        cuts: list[Cut] | None = chunk.memo.get(memo_key)
        if cuts is None:
            cuts = self._cut(chunk, name, partition, memo_key[0])
            if len(chunk.memo) < MEMO_LIMIT:
                chunk.memo[memo_key] = cuts
        return cuts

    def _cut(self, chunk: Chunk, name: str, partition: int, start: int) -> list[Cut]:
        size = self.options.params.batch_limit
        cuts: list[Cut] = []
        ids: list[str] = []
        events: list[bytes] = []
        for entry_id, event in chunk.entries[start:]:
            if event is None or (self._match is not None and not self._match(topic_of(event))):
                continue
            ids.append(entry_id)
            events.append(event)
            if len(events) == size:
                cuts.append(
                    (entry_id, ids, events, framing.reader_batch(name, partition, entry_id, events))
                )
                ids, events = [], []
        if events:
            cuts.append(
                (ids[-1], ids, events, framing.reader_batch(name, partition, ids[-1], events))
            )
        return cuts

    def _frame(self, encoded: bytes, at: tuple[str, int], offset: str) -> bytes:
        """The batch on the wire; over SSE with the position after it as `id:`."""
        if not self.options.sse:
            return encoded + b"\n"
        before = self._offsets[at]
        self._offsets[at] = offset
        position = self._format()
        self._offsets[at] = before
        return framing.sse_reader_batch(position, encoded)

    def _keep_alive(self) -> bytes:
        if self.options.sse:
            return framing.SSE_KEEP_ALIVE
        return b"".join(
            framing.reader_keep_alive(name, p, self._offsets[(name, p)])
            for name, p, _ in self._slots
        )

    def _reset_message(self, reason: str, where: list[tuple[str, int]]) -> bytes:
        return framing.sse_reset(reason, where, self.position())

    def closing(self, reason: str) -> bytes:
        """The stream's last message (SSE); NDJSON streams just end, as Nakadi's do."""
        return framing.sse_close(reason) if self.options.sse and reason != GONE else b""
