"""A stream client for browser-style tests: one GET stream (SSE or NDJSON) read in a thread
of its own with any headers, cookies and query parameters (a session cookie, a stream
token), its messages kept so that a test can wait on what arrived.
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
    event: str  # SSE's event name; NDJSON lines are `batch`
    id: str | None
    data: Any


class EventStream:
    """An open `GET path`; `close()` disconnects."""

    def __init__(
        self,
        base_url: str,
        path: str,
        *,
        sse: bool = True,
        headers: dict[str, str] | None = None,
        cookies: dict[str, str] | None = None,
        **params: Any,
    ) -> None:
        self.messages: list[Message] = []
        self.status = 0
        self.headers: httpx.Headers = httpx.Headers()
        self.problem: Any = None
        self.ended = threading.Event()
        self._changed = threading.Condition()
        self._opened = threading.Event()
        self._response: httpx.Response | None = None
        sent = {"Accept": "text/event-stream" if sse else "application/x-json-stream"}
        sent.update(headers or {})
        self._client = httpx.Client(
            base_url=base_url, cookies=cookies, timeout=httpx.Timeout(10, read=None)
        )
        self._thread = threading.Thread(
            target=self._read, args=(path, sent, params, sse), daemon=True
        )
        self._thread.start()
        if not self._opened.wait(10):
            raise AssertionError("the stream did not answer within 10 s")

    def _read(self, path: str, headers: dict[str, str], params: dict[str, Any], sse: bool) -> None:
        try:
            with self._client.stream("GET", path, params=params, headers=headers) as response:
                self._response = response
                self.status = response.status_code
                self.headers = response.headers
                if response.status_code != 200:
                    self.problem = orjson.loads(response.read())
                    return
                self._opened.set()
                fields: dict[str, str] = {}
                for line in response.iter_lines():
                    if not sse:
                        if line:
                            self._add(Message("batch", None, orjson.loads(line)))
                    elif line:
                        name, _, value = line.partition(":")
                        fields[name] = value.removeprefix(" ")
                    elif "data" in fields:
                        self._add(
                            Message(
                                fields.get("event", "message"),
                                fields.get("id"),
                                orjson.loads(fields["data"]),
                            )
                        )
                        fields = {}
                    else:
                        fields = {}
        except (httpx.HTTPError, RuntimeError):
            pass  # closed by the test
        finally:
            self._opened.set()
            self.ended.set()
            with self._changed:
                self._changed.notify_all()

    def _add(self, message: Message) -> None:
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()

    def wait(self, condition: Callable[[EventStream], bool], timeout: float = 15.0) -> None:
        """Wait until `condition(self)` holds; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"condition not met in {timeout} s; got {self.messages}")
                self._changed.wait(min(left, 0.2))

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for m in self.messages if m.event == "batch" for e in m.data.get("events", [])]

    def last_cursor(self) -> dict[str, str]:
        batches = [m.data for m in self.messages if m.event == "batch" and m.data.get("events")]
        return dict(batches[-1]["cursor"])

    def close(self) -> None:
        """Disconnect at once (shut the socket down, so that the server sees it now)."""
        if self._response is not None:
            network = self._response.extensions.get("network_stream")
            sock = network.get_extra_info("socket") if network is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._response.close()
        self._client.close()
        self._thread.join(10)
