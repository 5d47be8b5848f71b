"""A browser's `EventSource` on a reader across `manage.py up` being stopped and started:
the events published meanwhile (through another server process) arrive once and in order,
for a same-origin page signed in with the Django session and for a page of another origin
holding a stream token.
"""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import threading

import httpx
import pytest
from django.contrib.auth.models import User

from events.catalog.clients import create_client
from streamsite.processes import free_port, wait_until
from tests.browser import BROWSER, PASSWORD, operator_page
from tests.conftest import ROOT, database_url
from tests.helpers import business_event, event_type_body

pytestmark = BROWSER

OPEN_READER = """([url, name]) => {
    window.received = window.received || {};
    const got = window.received[name] = [];
    const source = new EventSource(url);
    source.addEventListener("batch", (message) => {
        for (const event of JSON.parse(message.data).events) got.push(event.order_number);
    });
    source.addEventListener("reset", () => got.push("RESET"));
}"""


class Up:
    """`manage.py up` with one server on `port`, on the tests' Redis and database."""

    def __init__(self, port: int, env: dict[str, str]) -> None:
        self.port = port
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.lines: list[str] = []

    def start(self) -> None:
        self.lines = []
        process = self.process = subprocess.Popen(
            [sys.executable, "manage.py", "up", "--servers", "1", "--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        threading.Thread(
            target=lambda: self.lines.extend(line.decode() for line in process.stdout),  # type: ignore[union-attr]
            daemon=True,
        ).start()

        def running() -> bool:
            assert process.poll() is None, "".join(self.lines)
            return any("Streamsite is running at" in line for line in self.lines)

        wait_until(running, timeout=60, message="manage.py up to say it is running")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            assert self.process.wait(60) == 0, "".join(self.lines)


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>another site</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def other_site():
    """Another origin on loopback: a real HTTP server with one blank page."""
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{site.server_address[1]}"
    site.shutdown()


@pytest.fixture
def up(redis_url, transactional_db, other_site):
    page_origin = other_site
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url(),
        "CORS_ALLOWED_ORIGINS": page_origin,
    }
    server = Up(free_port(), env)
    server.page_origin = page_origin  # type: ignore[attr-defined]
    server.start()
    yield server
    server.stop()


def received(page, name: str) -> list[str]:
    return page.evaluate(f"() => (window.received || {{}})[{name!r}] || []")


def test_event_source_resumes_across_a_restart_once_and_in_order(up, live_server):
    User.objects.create_superuser("operator", "operator@example.com", PASSWORD)
    token = create_client("shop", publish=["order.*"], read=["order.*"])[1]
    url = f"http://127.0.0.1:{up.port}"
    with httpx.Client(
        base_url=live_server.url, headers={"Authorization": f"Bearer {token}"}
    ) as api:
        created = api.post("/api/event-types", json=event_type_body(partitions=1))
        assert created.status_code == 201, created.text
        minted = api.post("/api/stream-tokens", json={"event_types": ["order.created"]})
        assert minted.status_code == 201, minted.text
        stream_token = minted.json()["token"]

        def publish(numbers: list[str]) -> None:
            events = [business_event(n) for n in numbers]
            response = api.post("/api/event-types/order.created/events", json=events)
            assert response.status_code == 200, response.text

        with operator_page(url) as page:
            other = page.context.browser.new_page()  # a context of its own: no session
            other.goto(f"{up.page_origin}/")
            path = "/api/event-types/order.created/events?read_from=begin"
            page.evaluate(OPEN_READER, [path, "session"])
            other.evaluate(OPEN_READER, [f"{url}{path}&access_token={stream_token}", "token"])
            publish(["A-0", "A-1", "A-2"])
            for reader, name in ((page, "session"), (other, "token")):
                wait_until(
                    lambda r=reader, n=name: received(r, n) == ["A-0", "A-1", "A-2"],
                    timeout=10,
                    message=f"the {name} reader to get the first events",
                )
            up.stop()
            publish(["B-0", "B-1", "B-2"])  # through another server, while this one is down
            up.start()
            publish(["C-0"])
            expected = ["A-0", "A-1", "A-2", "B-0", "B-1", "B-2", "C-0"]
            for reader, name in ((page, "session"), (other, "token")):
                wait_until(
                    lambda r=reader, n=name: len(received(r, n)) >= len(expected),
                    timeout=20,
                    message=f"the {name} reader to get everything after the restart",
                )
                assert received(reader, name) == expected
