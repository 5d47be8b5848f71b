"""What comes over the wire, parsed: subscription batches (NDJSON), Server-Sent Events, and
the messages of readers. Pure functions and dataclasses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

BEGIN = "BEGIN"  # Nakadi's offset before the first event


@dataclass(frozen=True)
class Batch:
    """One batch of a subscription stream: one partition's events (none for a keep-alive),
    the cursor to commit them, the stream that sent it, and shared mode's `offsets`.
    """

    cursor: dict[str, str]
    events: list[dict[str, Any]]
    stream_id: str
    info: dict[str, Any] = field(default_factory=dict)
    offsets: list[str] = field(default_factory=list)

    @property
    def partition(self) -> tuple[str, str]:
        """(event type, partition): the unit of ownership and of commits."""
        return self.cursor.get("event_type", ""), self.cursor["partition"]

    @property
    def close_reason(self) -> str | None:
        return self.info.get("close_reason")

    def ack_items(self) -> list[dict[str, str]]:
        """Shared mode: each event's `{event_type, partition, offset}` for POST …/acks."""
        event_type, partition = self.partition
        return [
            {"event_type": event_type, "partition": partition, "offset": offset}
            for offset in self.offsets
        ]


def parse_batch(line: str | bytes, stream_id: str) -> Batch:
    """One NDJSON line of a subscription stream."""
    data = json.loads(line)
    return Batch(
        cursor=data["cursor"],
        events=data.get("events") or [],
        stream_id=stream_id,
        info=data.get("info") or {},
        offsets=data.get("offsets") or [],
    )


def keep_alive_cursor(cursor: dict[str, str], offset: str) -> dict[str, str]:
    """The cursor of a keep-alive commit: the partition's committed `offset` again."""
    return {
        "event_type": cursor.get("event_type", ""),
        "partition": cursor["partition"],
        "offset": offset,
    }


@dataclass(frozen=True)
class ServerSentEvent:
    event: str
    data: str
    id: str | None


class SSEDecoder:
    """Turns the lines of a `text/event-stream` into messages (the WHATWG rules that matter
    here: `event`, `data`, `id`, `retry`, comments, a blank line ends a message).
    """

    def __init__(self) -> None:
        self._event, self._data, self._id = "", [], None  # type: tuple[str, list[str], str | None]
        self.retry_ms: int | None = None

    def feed(self, line: str) -> ServerSentEvent | None:
        """One line without its newline; a message when the line ends one."""
        if not line:
            if not self._data and not self._event:
                return None
            message = ServerSentEvent(self._event or "message", "\n".join(self._data), self._id)
            self._event, self._data, self._id = "", [], None
            return message
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None

    def feed_all(self, lines: Iterator[str]) -> Iterator[ServerSentEvent]:
        for line in lines:
            message = self.feed(line)
            if message is not None:
                yield message


@dataclass(frozen=True)
class ReaderBatch:
    """A reader's batch: events of one partition, and the position to resume after them."""

    events: list[dict[str, Any]]
    cursor: dict[str, str]
    id: str | None


@dataclass(frozen=True)
class Reset:
    """`event: reset`: the position could not be honoured exactly; the stream goes on from
    `position`. `reason`: trimmed, event_type_recreated, data_lost or invalid_position.
    """

    reason: str
    partitions: list[Any]
    position: Any


def reader_message(message: ServerSentEvent) -> ReaderBatch | Reset | str | None:
    """A reader's SSE message: a batch, a reset, a close reason (str), or None for a
    keep-alive or anything this client does not know.
    """
    if message.event == "batch":
        data = json.loads(message.data)
        return ReaderBatch(data.get("events") or [], data.get("cursor") or {}, message.id)
    if message.event == "reset":
        data = json.loads(message.data)
        return Reset(
            str(data.get("reason", "")), data.get("partitions") or [], data.get("position")
        )
    if message.event == "close":
        return str(json.loads(message.data).get("close_reason", ""))
    return None
