"""CORS for the API and the streams, over a real server started with CORS_ALLOWED_ORIGINS:
preflights answered and responses marked for the allowed origin alone, by the same rules
on a path Django serves, on a hot path that skips Django (AsyncView) and on a subscription
stream (a Channels consumer). No credentials: other origins use tokens, not cookies.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import LiveServer, database_url, start_live_server
from tests.event_streams import EventStream
from tests.helpers import business_event, subscribe_over_api

ORIGIN = "https://app.example"
ALLOW_HEADERS = {"authorization", "content-type", "last-event-id", "x-nakadi-cursors", "x-flow-id"}
EXPOSE = "X-Nakadi-StreamId, Location, Retry-After"


@pytest.fixture(scope="module")
def cors_server_process(django_db_setup, django_db_blocker, redis_url) -> Iterator[LiveServer]:
    """A server allowing ORIGIN and one other origin, sharing the tests' DB and Redis."""
    with pytest.MonkeyPatch.context() as env, django_db_blocker.unblock():
        env.setenv("CORS_ALLOWED_ORIGINS", f"{ORIGIN}, http://localhost:8080")
        server = start_live_server(database_url(), redis_url)
    yield server
    server.process.terminate()
    server.process.wait(10)


@pytest.fixture
def cors_server(cors_server_process: LiveServer, transactional_db) -> LiveServer:
    return cors_server_process


def preflight(server: LiveServer, path: str, origin: str = ORIGIN, method: str = "GET"):
    return httpx.options(
        server.url + path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, last-event-id",
        },
        timeout=10,
    )


def assert_preflight_answered(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ORIGIN
    allowed = {h.strip() for h in response.headers["access-control-allow-headers"].split(",")}
    assert allowed == ALLOW_HEADERS
    assert {"GET", "POST"} <= {
        m.strip() for m in response.headers["access-control-allow-methods"].split(",")
    }
    assert "access-control-allow-credentials" not in response.headers


def assert_marked(headers: httpx.Headers) -> None:
    """The allowed origin may read the response and the headers a client needs."""
    assert headers.get_list("access-control-allow-origin") == [ORIGIN]
    assert headers["access-control-expose-headers"] == EXPOSE
    assert "access-control-allow-credentials" not in headers
    assert "origin" in headers["vary"].lower()


def test_a_path_django_serves(cors_server, consumer_token):
    assert_preflight_answered(preflight(cors_server, "/api/event-types", method="POST"))
    with cors_server.client(consumer_token) as api:
        listed = api.get("/api/event-types", headers={"Origin": ORIGIN})
        assert listed.status_code == 200
        assert_marked(listed.headers)
    refused = httpx.get(cors_server.url + "/api/event-types", headers={"Origin": ORIGIN})
    assert refused.status_code == 401  # a browser may read why
    assert_marked(refused.headers)


def test_a_hot_path_that_skips_django(cors_server, consumer_token):
    url = "/api/event-types/order.created/events"
    assert_preflight_answered(preflight(cors_server, url, method="POST"))
    with cors_server.client(consumer_token) as api:
        subscribe_over_api(api)
        published = api.post(url, json=[business_event()], headers={"Origin": ORIGIN})
        assert published.status_code == 200, published.text
        assert_marked(published.headers)
        foreign = api.post(url, json=[business_event()], headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 200  # the server serves it; the browser hides it
        assert "access-control-allow-origin" not in foreign.headers


def test_a_subscription_stream_over_sse(cors_server, consumer_token):
    with cors_server.client(consumer_token) as api:
        subscription = subscribe_over_api(api)
        token = api.post("/api/stream-tokens", json={"subscription": subscription}).json()["token"]
    path = f"/api/subscriptions/{subscription}/events"
    assert_preflight_answered(preflight(cors_server, path))
    stream = EventStream(
        cors_server.url, path, headers={"Origin": ORIGIN}, access_token=token, batch_flush_timeout=1
    )
    try:
        assert stream.status == 200, stream.problem
        assert_marked(stream.headers)
        assert stream.headers["X-Nakadi-StreamId"]
    finally:
        stream.close()


def test_an_origin_not_allowed_gets_no_cors_headers(cors_server, consumer_token):
    for path in ("/api/event-types", "/api/subscriptions/x/events"):
        response = preflight(cors_server, path, origin="https://evil.example")
        assert "access-control-allow-origin" not in response.headers
    with cors_server.client(consumer_token) as api:
        listed = api.get("/api/event-types", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in listed.headers


def test_pages_are_not_cors_enabled(cors_server):
    response = httpx.get(cors_server.url + "/health/live", headers={"Origin": ORIGIN})
    assert "access-control-allow-origin" not in response.headers


def test_no_origin_is_allowed_by_default(live_server, consumer_token):
    response = preflight(live_server, "/api/event-types")
    assert "access-control-allow-origin" not in response.headers
    with live_server.client(consumer_token) as api:
        listed = api.get("/api/event-types", headers={"Origin": ORIGIN})
        assert "access-control-allow-origin" not in listed.headers
