"""A reader client for the tests: one `GET …/events` stream (SSE or NDJSON) read in a thread
of its own, its messages kept, so that a test can wait on what arrived.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson


@dataclass
class Message:
    event: str
    id: str | None
    data: Any


class ReaderClient:
    """An open reader stream; `messages` are SSE messages (NDJSON lines as `batch` or
    `keep-alive` messages without id).
    """

    def __init__(
        self,
        base_url: str,
        path: str,
        token: str | None = None,
        sse: bool = True,
        headers: dict[str, str] | None = None,
        **params: Any,
    ) -> None:
        self.messages: list[Message] = []
        self.status = 0
        self.headers: httpx.Headers | None = None
        self._response: httpx.Response | None = None
        self.problem: Any = None
        self.ended = threading.Event()
        self._changed = threading.Condition()
        sent = {"Accept": "text/event-stream" if sse else "application/x-json-stream"}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(headers or {})
        self._client = httpx.Client(base_url=base_url, timeout=httpx.Timeout(10, read=None))
        self._opened = threading.Event()
        self._sse = sse
        self._thread = threading.Thread(target=self._read, args=(path, sent, params), daemon=True)
        self._thread.start()
        if not self._opened.wait(10):
            raise AssertionError("the stream did not answer within 10 s")

    def _read(self, path: str, headers: dict[str, str], params: dict[str, Any]) -> None:
        try:
            with self._client.stream("GET", path, params=params, headers=headers) as response:
                self._response = response
                self.status = response.status_code
                self.headers = response.headers
                if response.status_code != 200:
                    self.problem = orjson.loads(response.read() or b"null")
                    self._opened.set()
                    return
                self._opened.set()
                if self._sse:
                    self._read_sse(response)
                else:
                    for line in response.iter_lines():
                        if line.strip():
                            data = orjson.loads(line)
                            kind = "batch" if data.get("events") else "keep-alive"
                            self._add(Message(kind, None, data))
        except (httpx.HTTPError, RuntimeError):
            pass  # closed by the test
        finally:
            self._opened.set()
            self.ended.set()
            with self._changed:
                self._changed.notify_all()

    def _read_sse(self, response: httpx.Response) -> None:
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if line == "":
                if "data" in fields or "event" in fields:
                    data = orjson.loads(fields["data"]) if fields.get("data") else None
                    self._add(Message(fields.get("event", "message"), fields.get("id"), data))
                fields = {}
                continue
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value

    def _add(self, message: Message) -> None:
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()

    def wait_for(self, done: Callable[[], bool], timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0 or (self.ended.is_set() and not done()):
                    raise AssertionError(f"not reached; messages: {self.messages[-5:]}")
                self._changed.wait(left)

    def batches(self) -> list[dict[str, Any]]:
        return [m.data for m in self.messages if m.event == "batch"]

    def events(self) -> list[dict[str, Any]]:
        return [e for b in self.batches() for e in b.get("events", [])]

    def of(self, event: str) -> list[Message]:
        return [m for m in self.messages if m.event == event]

    def last_id(self) -> str:
        return next(m.id for m in reversed(self.messages) if m.id)  # type: ignore[return-value]

    def wait_events(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        self.wait_for(lambda: len(self.events()) >= count, timeout)
        return self.events()

    def close(self) -> None:
        """Disconnect at once: shutting the socket down wakes the reading thread (a bare
        close does not, on Linux), and the server sees the client leave now.
        """
        response = self._response
        if response is not None:
            network = response.extensions.get("network_stream")
            sock = network.get_extra_info("socket") if network is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            response.close()
        self._client.close()
        self._thread.join(10)
