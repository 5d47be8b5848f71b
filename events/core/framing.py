"""Batches and their framing on the three transports (docs/architecture.md#transports):
pure functions.

A batch is Nakadi's `{"cursor": {...}, "events": [...], "info": {...}}`; the events are
spliced in as stored (already JSON), so a batch is encoded once, without re-parsing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

NDJSON = "application/x-json-stream"
SSE = "text/event-stream"
SSE_RETRY_MS = 1_000  # the reconnect delay an EventSource is told to use


@dataclass(frozen=True)
class Batch:
    """One partition's events (none for a keep-alive) and the cursor of the last one."""

    event_type: str
    partition: int
    offset: str
    cursor_token: str
    events: Sequence[bytes] = ()
    info: dict[str, Any] | None = None
    offsets: Sequence[str] = ()  # shared mode: each event's offset, for its ack

    def cursor(self) -> dict[str, str]:
        return {
            "partition": str(self.partition),
            "offset": self.offset,
            "event_type": self.event_type,
            "cursor_token": self.cursor_token,
        }

    def encode(self) -> bytes:
        """The batch as one JSON object, without a trailing newline."""
        out = b'{"cursor":' + orjson.dumps(self.cursor())
        if self.events:
            out += b',"events":[' + b",".join(self.events) + b"]"
        if self.offsets:
            out += b',"offsets":' + orjson.dumps(list(self.offsets))
        if self.info is not None:
            out += b',"info":' + orjson.dumps(self.info)
        return out + b"}"


def accepts_sse(accept: str) -> bool:
    """True when the client asks for Server-Sent Events rather than NDJSON (the default)."""
    return SSE in accept.lower() and NDJSON not in accept.lower()


def ndjson(batch: Batch) -> bytes:
    return batch.encode() + b"\n"


def sse_start() -> bytes:
    return f"retry: {SSE_RETRY_MS}\n\n".encode()


def sse(batch: Batch) -> bytes:
    """An SSE message: `event: batch` with the cursor token as `id:`; keep-alives (no
    events) are `event: keep-alive` without an id, so a resume never skips events.
    """
    if batch.events:
        return (
            b"event: batch\nid: "
            + batch.cursor_token.encode()
            + b"\ndata: "
            + batch.encode()
            + b"\n\n"
        )
    return b"event: keep-alive\ndata: " + batch.encode() + b"\n\n"


def close_info(reason: str, detail: str = "") -> dict[str, str]:
    """The `info` of a stream's last batch: why it ends."""
    return {"debug": f"Stream closed: {detail or reason}", "close_reason": reason}


def sse_close(reason: str, detail: str = "") -> bytes:
    return b"event: close\ndata: " + orjson.dumps(close_info(reason, detail)) + b"\n\n"


# -- readers (docs/architecture.md#readers) ----------------------------------------------

SSE_KEEP_ALIVE = b"event: keep-alive\ndata: {}\n\n"


def reader_cursor(event_type: str, partition: int, offset: str) -> bytes:
    """A reader's cursor: Nakadi's low-level `{partition, offset}`, with its event type."""
    return orjson.dumps({"partition": str(partition), "offset": offset, "event_type": event_type})


def reader_batch(event_type: str, partition: int, offset: str, events: Sequence[bytes]) -> bytes:
    """A reader's batch as one JSON object, the events spliced in as stored."""
    cursor = reader_cursor(event_type, partition, offset)
    return b'{"cursor":' + cursor + b',"events":[' + b",".join(events) + b"]}"


def reader_keep_alive(event_type: str, partition: int, offset: str) -> bytes:
    """An NDJSON keep-alive batch of one partition (Nakadi sends one per partition)."""
    return b'{"cursor":' + reader_cursor(event_type, partition, offset) + b"}\n"


def sse_reader_batch(position: str, encoded: bytes) -> bytes:
    return b"event: batch\nid: " + position.encode() + b"\ndata: " + encoded + b"\n\n"


def sse_reset(reason: str, partitions: Sequence[tuple[str, int]], position: str) -> bytes:
    """`event: reset`: why the stream cannot go on exactly, and the position it goes on
    from; no `id:`, like every control message.
    """
    body = {
        "reason": reason,
        "partitions": [{"event_type": n, "partition": str(p)} for n, p in partitions],
        "position": position,
    }
    return b"event: reset\ndata: " + orjson.dumps(body) + b"\n\n"
