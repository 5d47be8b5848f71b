"""A recording HTTP server on a loopback port: the internal service that a remote `$ref`
or `$schema` would make the server call (SSRF), if it ever fetched one.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class RecordingServer(http.server.ThreadingHTTPServer):
    """Answers every GET with a valid schema, and remembers the paths asked for."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RecordingHandler)
        self.requests: list[str] = []

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _RecordingHandler(http.server.BaseHTTPRequestHandler):
    server: RecordingServer

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        body = b'{"type": "object"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def internal_service() -> Iterator[RecordingServer]:
    server = RecordingServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def remote_schemas(url: str) -> list[dict[str, Any]]:
    return [
        {"$ref": f"{url}/root"},
        {"properties": {"a": {"$ref": f"{url}/property"}}},
        {"allOf": [{"$ref": f"{url}/all-of"}]},
        {"definitions": {"a": {"$ref": f"{url}/definition"}}},
        {"$id": f"{url}/base", "properties": {"a": {"$ref": "relative"}}},
        {"$schema": f"{url}/meta-schema", "type": "object"},
    ]
