"""A faulty front for a live server, on a loopback port: it answers publishing requests
from a script (503, or a 207 that stores only part of the batch) and passes everything
else to the server, recording each publishing request's eids.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx


class FaultyProxy(http.server.ThreadingHTTPServer):
    def __init__(self, target: str, script: list[str]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.target = target
        self.script = list(script)  # per publishing request: "503", "partial" or "pass"
        self.published: list[list[str]] = []  # the eids of each publishing request
        self.http = httpx.Client(timeout=10)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FaultyProxy
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._forward(None)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if not self.path.endswith("/events"):
            self._forward(body)
            return
        events = json.loads(body)
        self.server.published.append([e["metadata"]["eid"] for e in events])
        step = self.server.script.pop(0) if self.server.script else "pass"
        if step == "503":
            self._answer(503, {"title": "Service Unavailable", "status": 503}, "problem+json")
        elif step == "partial":
            # The first half is stored for real; the second is answered as failed, as a
            # server whose other partition's write failed would.
            half = len(events) // 2
            stored = self._send(json.dumps(events[:half]).encode())
            assert stored.status_code == 200, stored.text
            items = [
                {"eid": e["metadata"]["eid"], "publishing_status": "submitted", "step": "none"}
                for e in events[:half]
            ] + [
                {"eid": e["metadata"]["eid"], "publishing_status": "failed", "step": "publishing"}
                for e in events[half:]
            ]
            self._answer(207, items, "json")
        else:
            self._forward(body)

    def _send(self, body: bytes | None) -> httpx.Response:
        headers = {
            k: v
            for k, v in self.headers.items()
            if k.lower() not in ("host", "content-length", "connection")
        }
        return self.server.http.request(
            self.command, self.server.target + self.path, content=body, headers=headers
        )

    def _forward(self, body: bytes | None) -> None:
        response = self._send(body)
        self.send_response(response.status_code)
        for name in ("Content-Type", "X-Nakadi-StreamId", "Retry-After"):
            if name in response.headers:
                self.send_header(name, response.headers[name])
        self.send_header("Content-Length", str(len(response.content)))
        self.end_headers()
        self.wfile.write(response.content)

    def _answer(self, status: int, body: Any, kind: str) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", f"application/{kind}")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def faulty_proxy(target: str, script: list[str]) -> Iterator[FaultyProxy]:
    server = FaultyProxy(target, script)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        server.http.close()
        thread.join(5)
