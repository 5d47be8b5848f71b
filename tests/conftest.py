"""The test session's real parts: its own redis-server, and a Daphne on a loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connection

from events.catalog import snapshots
from events.catalog.clients import create_client
from events.models import EventType
from events.store.connections import redis_client
from streamsite.processes import free_port, wait_until
from streamsite.redis_server import start_redis
from tests import recording
from tests.helpers import event_type_row
from tests.streams import Stream

ROOT = Path(__file__).resolve().parent.parent


CORE = ROOT / "tests" / "core"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The core is pure (tests/test_layout.py keeps it so): its tests need no Redis."""
    for item in items:
        if item.path.is_relative_to(CORE):
            item.add_marker(pytest.mark.no_redis)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of the test session's own, on a free loopback port."""
    port = free_port()
    data = tmp_path_factory.mktemp("redis")
    process = start_redis(data, port=port, persistent=False, log_file=data / "redis.log")
    url = f"redis://127.0.0.1:{port}/0"
    settings.REDIS_URL = url
    settings.RQ_QUEUES = {"default": {"URL": url, "DEFAULT_TIMEOUT": 60}}
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture(autouse=True)
def clean_redis(request: pytest.FixtureRequest) -> None:
    """Each test starts on an empty keyspace, and so with no cached copies of rows.

    A test marked no_redis starts no redis-server: it is pointed at a closed port, so a
    Redis call it makes after all fails loudly instead of finding someone else's Redis.
    """
    if request.node.get_closest_marker("no_redis"):
        settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
        return
    settings.REDIS_URL = request.getfixturevalue("redis_url")
    redis_client().flushdb()
    snapshots.clear()


@pytest.fixture
def admin_token(db) -> str:
    return create_client("ops", is_admin=True)[1]


@pytest.fixture
def producer_token(db) -> str:
    """The shop service: it may publish to and read the order.* event types."""
    return create_client("shop", publish=["order.*"], read=["order.*"])[1]


@pytest.fixture
def consumer_token(transactional_db) -> str:
    """The shop service as a consumer too: publish, read and consume order.*."""
    return create_client("shop", publish=["order.*"], read=["order.*"], consume=["order.*"])[1]


@pytest.fixture
def consumer_api(live_server, consumer_token: str) -> Iterator[httpx.Client]:
    """An HTTP client of the live server with the consumer's token."""
    with live_server.client(consumer_token) as http:
        yield http


@pytest.fixture
def streams() -> Iterator[list[Stream]]:
    """Streams a test opens (tests.streams.Stream); closed when it ends."""
    opened: list[Stream] = []
    yield opened
    for stream in opened:
        stream.close()


@pytest.fixture
def order_type(db) -> EventType:
    """order.created with two partitions, written straight to the database."""
    return event_type_row("order.created", partition_count=2)


@pytest.fixture
def stranger_token(db) -> str:
    """A client with no grants at all."""
    return create_client("stranger")[1]


@pytest.fixture
def internal_service() -> Iterator[recording.RecordingServer]:
    """A recording HTTP server on a loopback port: what a remote `$ref` would call."""
    with recording.internal_service() as server:
        yield server


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def database_url() -> str:
    """A URL for the database the tests use, for a server in another process."""
    params = connection.settings_dict
    if params["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{params['NAME']}"
    return (
        f"postgres://{params['USER']}:{params['PASSWORD']}@{params['HOST']}:"
        f"{params['PORT']}/{params['NAME']}"
    )


class LiveServer:
    def __init__(self, url: str, process: subprocess.Popen[bytes]) -> None:
        self.url = url
        self.process = process

    def client(self, token: str | None = None, **kwargs) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10, **kwargs)


def start_live_server(db_url: str, redis_url: str) -> LiveServer:
    """A real Daphne serving the project on a free loopback port."""
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "DATABASE_URL": db_url,
        "DJANGO_SETTINGS_MODULE": "streamsite.settings",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "streamsite.asgi:application",
        ],
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"daphne exited with {process.returncode}")
        try:
            return httpx.get(f"{url}/health/live", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(ready, timeout=30, message="daphne to answer /health/live")
    return LiveServer(url, process)


def _serve(django_db_blocker, redis_url: str) -> Iterator[LiveServer]:
    with django_db_blocker.unblock():
        db_url = database_url()
    server = start_live_server(db_url, redis_url)
    yield server
    server.process.terminate()
    server.process.wait(10)


@pytest.fixture(scope="session")
def live_server_process(django_db_setup, django_db_blocker, redis_url: str) -> Iterator[LiveServer]:
    """A real Daphne serving the project, sharing the tests' DB and Redis."""
    yield from _serve(django_db_blocker, redis_url)


@pytest.fixture(scope="session")
def other_live_server_process(
    django_db_setup, django_db_blocker, redis_url: str
) -> Iterator[LiveServer]:
    """A second server process, for sessions of one subscription spread over two servers."""
    yield from _serve(django_db_blocker, redis_url)


@pytest.fixture
def _live_server_helper() -> None:
    """Replaces pytest-django's hook for its in-process live server, which ours is not."""


@pytest.fixture
def live_server(live_server_process: LiveServer, transactional_db) -> LiveServer:
    """The live server, with the test's rows committed so that it can see them."""
    return live_server_process


@pytest.fixture
def doomed_server(transactional_db, redis_url: str) -> Iterator[LiveServer]:
    """A server process of the test's own, to be stopped or killed by it."""
    server = start_live_server(database_url(), redis_url)
    yield server
    if server.process.poll() is None:
        server.process.kill()
        server.process.wait(10)


@pytest.fixture
def other_live_server(other_live_server_process: LiveServer, transactional_db) -> LiveServer:
    return other_live_server_process
