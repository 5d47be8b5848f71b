"""A Nakadi-style stream client for the tests: it reads one NDJSON stream in a thread of
its own, so that a test can hold several sessions open and wait on what they received.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson


class Stream:
    """One open `GET /api/subscriptions/{id}/events`; `close()` disconnects."""

    def __init__(self, base_url: str, token: str, subscription: str, **params: Any) -> None:
        self.subscription = subscription
        self.batches: list[dict[str, Any]] = []
        self.ended = threading.Event()
        self._changed = threading.Condition()
        self._client = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(10, read=None),
        )
        self._opened = threading.Event()
        self.status = 0
        self.id = ""
        self.problem: dict[str, Any] | None = None
        self._response: httpx.Response | None = None
        body = params.pop("body", None)
        self._thread = threading.Thread(target=self._read, args=(params, body), daemon=True)
        self._thread.start()
        if not self._opened.wait(10):
            raise AssertionError("the stream did not answer within 10 s")

    def _read(self, params: dict[str, Any], body: Any) -> None:
        method = "POST" if body is not None else "GET"
        url = f"/api/subscriptions/{self.subscription}/events"
        try:
            with self._client.stream(method, url, params=params, json=body) as response:
                self._response = response
                self.status = response.status_code
                self.id = response.headers.get("X-Nakadi-StreamId", "")
                if response.status_code != 200:
                    self.problem = orjson.loads(response.read())
                    return
                self._opened.set()
                for line in response.iter_lines():
                    if line:
                        with self._changed:
                            self.batches.append(orjson.loads(line))
                            self._changed.notify_all()
        except (httpx.HTTPError, RuntimeError):
            pass  # closed by the test
        finally:
            self._opened.set()
            self.ended.set()
            with self._changed:
                self._changed.notify_all()

    def wait(self, condition: Callable[[Stream], bool], timeout: float = 15.0) -> None:
        """Wait until `condition(self)` holds; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"condition not met in {timeout} s; got {self.batches}")
                self._changed.wait(min(left, 0.2))

    def wait_closed(self, timeout: float = 15.0) -> str:
        """Wait for the stream's end; its close reason."""
        self.wait(lambda s: s.ended.is_set(), timeout)
        infos = [b.get("info", {}) for b in self.batches]
        return next((i["close_reason"] for i in reversed(infos) if "close_reason" in i), "")

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for b in self.batches for e in b.get("events", [])]

    def data_batches(self) -> list[dict[str, Any]]:
        return [b for b in self.batches if b.get("events")]

    def partitions(self) -> set[str]:
        return {b["cursor"]["partition"] for b in self.batches}

    def last_cursor(self, partition: str | None = None) -> dict[str, str]:
        for batch in reversed(self.data_batches()):
            if partition is None or batch["cursor"]["partition"] == partition:
                return dict(batch["cursor"])
        raise AssertionError(f"no batch on partition {partition}")

    def commit(self, *cursors: dict[str, str]) -> httpx.Response:
        return self._client.post(
            f"/api/subscriptions/{self.subscription}/cursors",
            json={"items": list(cursors)},
            headers={"X-Nakadi-StreamId": self.id},
        )

    def commit_all(self) -> None:
        """Commit the last cursor of every partition this stream received events on."""
        cursors = [
            self.last_cursor(p) for p in {b["cursor"]["partition"] for b in self.data_batches()}
        ]
        if cursors:
            response = self.commit(*cursors)
            assert response.status_code in (200, 204), response.text

    def close(self) -> None:
        """Disconnect at once: shut the socket down, which wakes the reading thread (a bare
        close does not, on Linux) so that the server sees the client leave now, not at its
        next write.
        """
        if self._response is not None:
            network = self._response.extensions.get("network_stream")
            sock = network.get_extra_info("socket") if network is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._response.close()
        self._client.close()
        self._thread.join(10)
