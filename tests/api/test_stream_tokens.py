"""Stream tokens (POST /api/stream-tokens): minted by a token or a session, scoped to what
was asked and to the caller's grants, accepted only as `access_token=` of a stream, refused
once expired; a subscription stream opened with one ends with `token_expired`. An API
token is never accepted in a URL.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.core import signing
from django.test import Client as DjangoClient

from events.catalog import stream_tokens
from events.catalog.clients import create_client
from streamsite.processes import wait_until
from tests.api.test_browser_auth import CSRF, page, session_of
from tests.conftest import bearer
from tests.event_streams import EventStream
from tests.helpers import business_event, event_type_body, subscribe, subscribe_over_api


def mint(client: DjangoClient, body, **headers) -> tuple[int, dict]:
    response = client.post("/api/stream-tokens", body, content_type="application/json", **headers)
    return response.status_code, response.json()


@pytest.fixture
def reader_token(db) -> str:
    """A client that may read order.* and nothing else."""
    return create_client("dashboard", read=["order.*"])[1]


def test_a_client_mints_a_token_for_what_it_may_read(client, reader_token):
    before = time.time()
    status, body = mint(
        client, {"event_types": ["order.created", "order.*"]}, **bearer(reader_token)
    )
    assert status == 201, body
    assert set(body) == {"token", "expires_at"}
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert expires.tzinfo == UTC
    assert before + 3600 - 1 <= expires.timestamp() <= time.time() + 3600 + 1
    claims = stream_tokens.verify(body["token"])
    assert claims.scope.action == "read"
    assert claims.scope.patterns == ("order.created", "order.*")


def test_it_takes_a_ttl_written_with_a_fraction_of_zero(client, reader_token):
    before = time.time()
    status, body = mint(
        client, {"event_types": ["order.*"], "ttl_seconds": 600.0}, **bearer(reader_token)
    )
    assert status == 201, body
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert before + 600 - 1 <= expires.timestamp() <= time.time() + 600 + 1
    status, _ = mint(
        client, {"event_types": ["order.*"], "ttl_seconds": 600.5}, **bearer(reader_token)
    )
    assert status == 422


def test_it_refuses_what_the_caller_may_not_read(client, reader_token):
    for asked in (["payment.done"], ["order.created", "payment.done"], ["*"], ["order*"]):
        status, body = mint(client, {"event_types": asked}, **bearer(reader_token))
        assert status == 403, (asked, body)


def test_it_refuses_a_subscription_the_caller_may_not_consume(client, reader_token, order_type):
    subscription = subscribe("order.created")
    status, body = mint(client, {"subscription": str(subscription.pk)}, **bearer(reader_token))
    assert status == 403, body
    status, body = mint(
        client, {"subscription": "00000000-0000-4000-8000-000000000000"}, **bearer(reader_token)
    )
    assert status == 404, body


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"event_types": ["order.created"], "subscription": "x"},
        {"event_types": []},
        {"event_types": "order.created"},
        {"event_types": [""]},
        {"event_types": ["order.created"], "ttl_seconds": 0},
        {"event_types": ["order.created"], "ttl_seconds": 86_401},
        {"event_types": ["order.created"], "ttl_seconds": "60"},
        {"event_types": ["order.created"], "ttl_seconds": True},
        {"event_types": ["order.created"], "scope": "write"},
        ["order.created"],
    ],
)
def test_it_answers_a_bad_body_with_422(client, reader_token, body):
    status, problem = mint(client, body, **bearer(reader_token))
    assert status == 422, problem


def test_a_session_mints_with_its_csrf_token_only(db):
    user = get_user_model().objects.create_user("carol")
    linked, _ = create_client("dashboard", read=["order.*"])
    linked.user = user
    linked.save()
    session = session_of(user)
    status, _ = mint(page(session), {"event_types": ["order.*"]})
    assert status == 403  # no CSRF token
    status, body = mint(page(session), {"event_types": ["order.*"]}, HTTP_X_CSRFTOKEN=CSRF)
    assert status == 201, body
    assert stream_tokens.verify(body["token"]).subject == f"user:{user.pk}"


def test_a_stream_token_opens_nothing_but_streams(client, reader_token):
    _, body = mint(client, {"event_types": ["order.*"]}, **bearer(reader_token))
    token = body["token"]
    as_header = client.get("/api/event-types", **bearer(token))
    assert as_header.status_code == 401
    in_url = client.get(f"/api/event-types?access_token={token}")
    assert in_url.status_code == 401
    assert "opens streams only" in in_url.json()["detail"]
    again = client.post(
        f"/api/stream-tokens?access_token={token}",
        {"event_types": ["order.*"]},
        content_type="application/json",
    )
    assert again.status_code == 401


def test_an_api_token_in_a_url_is_refused_with_401(client, live_server, consumer_token):
    response = client.get(f"/api/event-types?access_token={consumer_token}")
    assert response.status_code == 401
    assert "never accepted in a URL" in response.json()["detail"]
    with live_server.client() as http:
        subscription = "00000000-0000-4000-8000-000000000000"
        stream = http.get(
            f"/api/subscriptions/{subscription}/events", params={"access_token": consumer_token}
        )
        assert stream.status_code == 401
        assert "never accepted in a URL" in stream.json()["detail"]


def test_a_forged_or_foreign_signed_token_is_401(live_server, consumer_token):
    with live_server.client(consumer_token) as api:
        subscription = subscribe_over_api(api)
    claims = {"s": "client:1", "a": "consume", "u": subscription, "e": 10**13}
    forged = [
        signing.dumps(claims, salt="another.salt", compress=True),
        signing.dumps(claims, key="not-the-secret-key", salt=stream_tokens.SALT, compress=True),
        "garbage",
    ]
    for token in forged:
        stream = EventStream(
            live_server.url, f"/api/subscriptions/{subscription}/events", access_token=token
        )
        assert stream.status == 401, token
        assert "not a valid stream token" in stream.problem["detail"]


def test_a_consume_token_opens_its_own_subscription_only(live_server, consumer_token):
    with live_server.client(consumer_token) as api:
        subscription = subscribe_over_api(api)
        other = api.post(
            "/api/subscriptions",
            json={
                "owning_application": "shop",
                "event_types": ["order.created"],
                "consumer_group": "other",
            },
        ).json()["id"]
        token = api.post("/api/stream-tokens", json={"subscription": subscription}).json()["token"]
        read_token = api.post("/api/stream-tokens", json={"event_types": ["order.created"]}).json()[
            "token"
        ]
    with live_server.client() as anonymous:
        published = anonymous.post(
            f"/api/event-types/order.created/events?access_token={token}",
            json=[business_event()],
        )
        assert published.status_code == 401  # publishing is no stream
        assert "opens streams only" in published.json()["detail"]
    path = "/api/subscriptions/{}/events"
    refused = EventStream(live_server.url, path.format(other), access_token=token)
    assert refused.status == 403, refused.problem
    assert "allows consuming subscription" in refused.problem["detail"]
    reading = EventStream(live_server.url, path.format(subscription), access_token=read_token)
    assert reading.status == 403, reading.problem
    opened = EventStream(
        live_server.url, path.format(subscription), access_token=token, batch_flush_timeout=1
    )
    try:
        assert opened.status == 200, opened.problem
    finally:
        opened.close()


def test_a_token_is_checked_against_the_grants_when_used(live_server):
    client, api_token = create_client("shop", read=["order.*"], consume=["order.*"])
    with live_server.client(api_token) as api:
        admin = create_client("ops", is_admin=True)[1]
        with live_server.client(admin) as ops:
            subscription = subscribe_over_api(ops)
        token = api.post("/api/stream-tokens", json={"subscription": subscription}).json()["token"]
    client.grants.filter(action="consume").delete()
    stream = EventStream(
        live_server.url, f"/api/subscriptions/{subscription}/events", access_token=token
    )
    assert stream.status == 403, stream.problem


def test_an_expired_token_is_401_when_connecting(live_server, consumer_token):
    with live_server.client(consumer_token) as api:
        subscription = subscribe_over_api(api)
        minted = api.post(
            "/api/stream-tokens", json={"subscription": subscription, "ttl_seconds": 1}
        ).json()
    expires = datetime.fromisoformat(minted["expires_at"].replace("Z", "+00:00")).timestamp()
    wait_until(lambda: time.time() > expires, timeout=5, message="the token to expire")
    stream = EventStream(
        live_server.url, f"/api/subscriptions/{subscription}/events", access_token=minted["token"]
    )
    assert stream.status == 401
    assert "expired" in stream.problem["detail"]


def test_an_sse_stream_ends_with_token_expired_when_its_token_expires(live_server, consumer_token):
    with live_server.client(consumer_token) as api:
        subscription = subscribe_over_api(api)
        assert (
            api.post(
                "/api/event-types/order.created/events", json=[business_event("A-1")]
            ).status_code
            == 200
        )
        minted = api.post(
            "/api/stream-tokens", json={"subscription": subscription, "ttl_seconds": 3}
        ).json()
    stream = EventStream(
        live_server.url,
        f"/api/subscriptions/{subscription}/events",
        access_token=minted["token"],
        batch_flush_timeout=1,
    )
    try:
        assert stream.status == 200, stream.problem
        stream.wait(lambda s: len(s.events) == 1)
        assert s_numbers(stream) == ["A-1"]
        stream.wait(lambda s: s.ended.is_set(), timeout=10)
        expires = datetime.fromisoformat(minted["expires_at"].replace("Z", "+00:00"))
        assert time.time() >= expires.timestamp()
        close = stream.messages[-1]
        assert close.event == "close"
        assert close.id is None
        assert close.data["close_reason"] == "token_expired"
    finally:
        stream.close()


def s_numbers(stream: EventStream) -> list[str]:
    return [e["order_number"] for e in stream.events]


def test_a_websocket_closes_with_token_expired(live_server, consumer_token):
    import asyncio

    import orjson
    import websockets

    with live_server.client(consumer_token) as api:
        subscription = subscribe_over_api(api)
        minted = api.post(
            "/api/stream-tokens", json={"subscription": subscription, "ttl_seconds": 2}
        ).json()
    url = live_server.url.replace("http://", "ws://")
    target = f"{url}/ws/subscriptions/{subscription}?access_token={minted['token']}"

    async def run() -> tuple[list[dict], int | None]:
        frames = []
        async with websockets.connect(target) as socket:
            # Iteration ends when the server closes the socket normally.
            async for frame in socket:
                frames.append(orjson.loads(frame))
            return frames, socket.close_code

    frames, code = asyncio.run(run())
    assert code == 1000
    assert frames[-1]["info"]["close_reason"] == "token_expired"


def test_minting_needs_a_caller(client, db):
    response = client.post(
        "/api/stream-tokens", {"event_types": ["order.*"]}, content_type="application/json"
    )
    assert response.status_code == 401


def test_a_read_token_reads_its_event_types_only(live_server, admin_token):
    """The readers (events/api/readers.py) ask the same principal: scope ∩ grants."""
    dashboard_token = create_client("dashboard", read=["order.*", "payment.*"])[1]
    with live_server.client(admin_token) as ops:
        for name in ("order.created", "payment.done"):
            body = event_type_body(name, owning_application="ops")
            assert ops.post("/api/event-types", json=body).status_code == 201
    with live_server.client(dashboard_token) as api:
        token = api.post("/api/stream-tokens", json={"event_types": ["order.*"]}).json()["token"]
    refused = EventStream(
        live_server.url, "/api/event-types/payment.done/events", access_token=token
    )
    assert refused.status == 403, refused.problem
    assert "allows reading order.* only" in refused.problem["detail"]
    several = EventStream(
        live_server.url, "/api/events", access_token=token, event_type=["payment.done"]
    )
    assert several.status == 403, several.problem
    reading = EventStream(
        live_server.url,
        "/api/event-types/order.created/events",
        access_token=token,
        read_from="begin",
        batch_flush_timeout=1,
    )
    try:
        assert reading.status == 200, reading.problem
    finally:
        reading.close()
