"""The contract check of one fan-out reader: the body parsed whole (HTTP/1.1 chunked
framing, then SSE messages), each message held to Streamsite's reader contract:
`event: batch` messages carry an `id:` and a `data:` of {"cursor": ..., "events": [...]};
keep-alives carry no `id:`. The other readers of `bench fanout` only scan for timestamps.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

MAX_PROBLEMS = 10


class SseCheck:
    """Fed the body of `reader`'s answer as it arrives (after `start`)."""

    def __init__(self, reader: object) -> None:
        self.reader = reader
        self.chunked = False
        self._raw = b""  # not yet de-chunked
        self._text = b""  # de-chunked, not yet a whole message
        self._left = 0  # bytes of the current chunk's data still to come
        self._crlf = False  # the CRLF that ends a chunk's data is still to come
        self.events: Counter[str] = Counter()  # messages by their event name
        self.batch_events = 0  # events inside the batches
        self.problems: list[str] = []

    def start(self, *, chunked: bool) -> None:
        self.chunked = chunked

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text[:300])

    def feed(self, data: bytes) -> None:
        self._text += self._dechunk(data) if self.chunked else data
        *messages, self._text = self._text.replace(b"\r\n", b"\n").split(b"\n\n")
        for message in messages:
            self._message(message)

    def _dechunk(self, data: bytes) -> bytes:
        raw, out = self._raw + data, bytearray()
        while True:
            if self._left:  # inside a chunk's data
                piece = raw[: self._left]
                out += piece
                raw = raw[len(piece) :]
                self._left -= len(piece)
                if self._left:
                    break
                self._crlf = True
            if self._crlf:  # the CRLF after a chunk's data
                if len(raw) < 2:
                    break
                if raw[:2] != b"\r\n":
                    self.problem("a chunk did not end with CRLF")
                raw, self._crlf = raw[2:], False
            line_end = raw.find(b"\r\n")
            if line_end < 0:
                break
            try:
                size = int(raw[:line_end].split(b";")[0], 16)
            except ValueError:
                self.problem(f"bad chunk size line {raw[:40]!r}")
                raw = b""
                break
            raw = raw[line_end + 2 :]
            self._left, self._crlf = size, size == 0
        self._raw = raw
        return bytes(out)

    def _message(self, message: bytes) -> None:
        fields: dict[str, list[str]] = {}
        for line in message.decode(errors="replace").split("\n"):
            if not line or line.startswith(":"):
                continue  # a comment (padding, heartbeats)
            name, _, value = line.partition(":")
            fields.setdefault(name, []).append(value.removeprefix(" "))
        if not fields.keys() - {"retry"}:
            return  # nothing, or only the reconnection delay: no event
        event = fields.get("event", ["message"])[-1]
        self.events[event] += 1
        has_id = "id" in fields
        if event == "batch":
            if not has_id or not fields["id"][-1]:
                self.problem("an `event: batch` message without an id")
            self._batch("\n".join(fields.get("data", [])))
        elif event == "keep-alive" and has_id:
            self.problem("a keep-alive with an id")

    def _batch(self, data: str) -> None:
        try:
            batch: Any = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.problem(f"batch data is not JSON: {data[:80]!r}")
            return
        if not isinstance(batch, dict) or "cursor" not in batch:
            self.problem(f"batch data without a cursor: {data[:80]!r}")
            return
        events = batch.get("events")
        if not isinstance(events, list) or not events:
            self.problem(f"an `event: batch` without events: {data[:80]!r}")
            return
        self.batch_events += len(events)

    def summary(self) -> dict[str, Any]:
        return {
            "messages": dict(self.events),
            "events_in_batches": self.batch_events,
            "problems": self.problems,
        }
