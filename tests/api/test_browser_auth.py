"""Same-origin pages call the API with the Django session (events/api/identity.py): a
superuser may do everything, another user acts as the client linked to it, an unlinked one
gets 403; POST, PUT, PATCH and DELETE need Django's CSRF token, on Django's views and on
the paths that skip Django alike (publishing and commits over a real server), and a bearer
token needs none.
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import orjson
import pytest
import websockets
from django.contrib.auth import get_user_model
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client as DjangoClient

from events.catalog.clients import create_client
from tests.event_streams import EventStream
from tests.helpers import business_event, event_type_body, subscribe_over_api

CSRF = _get_new_csrf_string()  # a CSRF secret a page would hold in its csrftoken cookie


def session_of(user) -> str:
    """A session signed in as `user` (as the admin's login makes one): its cookie value."""
    client = DjangoClient()
    client.force_login(user)
    return str(client.cookies["sessionid"].value)


def page(session: str, *, csrf: bool = True) -> DjangoClient:
    """A same-origin page's requests: the session cookie, the csrftoken cookie (when `csrf`),
    and Django's CSRF checks enforced.
    """
    client = DjangoClient(enforce_csrf_checks=True)
    client.cookies["sessionid"] = session
    if csrf:
        client.cookies["csrftoken"] = CSRF
    return client


def browser(server, session: str, *, csrf: bool = True) -> httpx.Client:
    """A same-origin page's requests to a real server: session and csrftoken cookies, and
    the X-CSRFToken header when `csrf`.
    """
    return httpx.Client(
        base_url=server.url,
        cookies={"sessionid": session, "csrftoken": CSRF},
        headers={"X-CSRFToken": CSRF} if csrf else {},
        timeout=10,
    )


@pytest.fixture
def root(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", None)


@pytest.fixture
def alice(db):
    """A user linked to the shop client (publish, read and consume order.*)."""
    user = get_user_model().objects.create_user("alice")
    client, _ = create_client("shop", publish=["order.*"], read=["order.*"], consume=["order.*"])
    client.user = user
    client.save()
    return user


@pytest.fixture
def bob(db):
    """A user linked to no client."""
    return get_user_model().objects.create_user("bob")


def test_a_superuser_s_session_may_do_everything(root):
    session = page(session_of(root))
    assert session.get("/api/event-types").status_code == 200
    body = event_type_body("payment.done", owning_application="anyone")
    response = session.post(
        "/api/event-types", body, content_type="application/json", HTTP_X_CSRFTOKEN=CSRF
    )
    assert response.status_code == 201, response.content


def test_a_linked_user_acts_with_its_client_s_grants(alice):
    session = page(session_of(alice))
    allowed = session.post(
        "/api/event-types",
        event_type_body(),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=CSRF,
    )
    assert allowed.status_code == 201, allowed.content
    refused = session.post(
        "/api/event-types",
        event_type_body("payment.done"),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=CSRF,
    )
    assert refused.status_code == 403
    assert "'shop' has no publish grant for 'payment.done'" in refused.json()["detail"]


def test_a_user_without_a_linked_client_gets_403(bob):
    response = page(session_of(bob)).get("/api/event-types")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert "'bob' is not linked to an API client" in response.json()["detail"]


def test_no_session_and_no_token_is_401(db):
    response = DjangoClient().get("/api/event-types")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_session_that_is_not_one_is_401(db):
    response = page("no-such-session").get("/api/event-types")
    assert response.status_code == 401
    assert "session has ended" in response.json()["detail"]


def test_a_session_post_needs_the_csrf_token(alice):
    session = session_of(alice)
    body = event_type_body()
    missing = page(session).post("/api/event-types", body, content_type="application/json")
    assert missing.status_code == 403
    assert "CSRF" in missing.json()["detail"]
    wrong = page(session).post(
        "/api/event-types",
        body,
        content_type="application/json",
        HTTP_X_CSRFTOKEN=_get_new_csrf_string(),
    )
    assert wrong.status_code == 403
    no_cookie = page(session, csrf=False).post(
        "/api/event-types", body, content_type="application/json", HTTP_X_CSRFTOKEN=CSRF
    )
    assert no_cookie.status_code == 403
    right = page(session).post(
        "/api/event-types", body, content_type="application/json", HTTP_X_CSRFTOKEN=CSRF
    )
    assert right.status_code == 201, right.content


def test_a_bearer_token_needs_no_csrf_token_even_beside_a_session(bob, admin_token):
    # bob's session alone would get 403; the token is checked instead, with no CSRF token.
    response = page(session_of(bob)).post(
        "/api/event-types",
        event_type_body(),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {admin_token}",
    )
    assert response.status_code == 201, response.content


def test_publishing_by_session_skips_django_and_still_checks_csrf(live_server, alice):
    """POST …/events is served by AsyncView, before Django's middleware."""
    session = session_of(alice)
    url = "/api/event-types/order.created/events"
    with browser(live_server, session) as http:
        assert http.post("/api/event-types", json=event_type_body()).status_code == 201
        published = http.post(url, json=[business_event("A-2")])
        assert published.status_code == 200, published.text
    with browser(live_server, session, csrf=False) as http:
        refused = http.post(url, json=[business_event("A-1")])
        assert refused.status_code == 403
        assert "CSRF" in refused.json()["detail"]


def test_a_browser_consumes_and_commits_by_session(live_server, alice):
    """The stream and the commit (AsyncView) by the session: the commit needs the CSRF
    token.
    """
    session = session_of(alice)
    with browser(live_server, session) as http:
        subscription = subscribe_over_api(http)
        published = http.post("/api/event-types/order.created/events", json=[business_event("A-1")])
        assert published.status_code == 200, published.text
    stream = EventStream(
        live_server.url,
        f"/api/subscriptions/{subscription}/events",
        cookies={"sessionid": session},
        batch_flush_timeout=1,
    )
    try:
        assert stream.status == 200, stream.problem
        stream.wait(lambda s: len(s.events) == 1)
        assert stream.events[0]["order_number"] == "A-1"
        commit = {"items": [stream.last_cursor()]}
        headers = {"X-Nakadi-StreamId": stream.headers["X-Nakadi-StreamId"]}
        url = f"/api/subscriptions/{subscription}/cursors"
        with browser(live_server, session, csrf=False) as http:
            refused = http.post(url, json=commit, headers=headers)
            assert refused.status_code == 403
            assert "CSRF" in refused.json()["detail"]
        with browser(live_server, session) as http:
            committed = http.post(url, json=commit, headers=headers)
            assert committed.status_code == 204, committed.text
    finally:
        stream.close()


def test_a_signed_out_session_is_refused_at_once(live_server, alice):
    """The server caches a session's principal; signing out makes it stale everywhere."""
    alice.is_staff = True  # so that the admin's sign-out page takes her
    alice.save()
    session = session_of(alice)
    url = "/api/event-types/order.created/events"
    with browser(live_server, session) as http:
        assert http.post("/api/event-types", json=event_type_body()).status_code == 201
        assert http.post(url, json=[business_event()]).status_code == 200
        assert http.post("/admin/logout/").status_code == 200  # the "logged out" page
        response = http.post(url, json=[business_event()])
        assert response.status_code == 401, response.text


def test_a_signed_in_websocket_must_come_from_this_site(live_server, alice):
    """Browsers send cookies on a cross-site WebSocket handshake, and CORS does not apply."""
    session = session_of(alice)
    with browser(live_server, session) as http:
        subscription = subscribe_over_api(http)
    url = (
        f"{live_server.url.replace('http://', 'ws://')}/ws/subscriptions/{subscription}"
        "?batch_flush_timeout=1"
    )

    async def first_frame(origin: str) -> tuple[dict, int | None]:
        async with websockets.connect(
            url, origin=origin, additional_headers={"Cookie": f"sessionid={session}"}
        ) as socket:
            frame = orjson.loads(await asyncio.wait_for(socket.recv(), 10))
            if "problem" in frame:
                with contextlib.suppress(websockets.ConnectionClosed):
                    await asyncio.wait_for(socket.recv(), 10)
            return frame, socket.close_code

    frame, code = asyncio.run(first_frame("https://evil.example"))
    assert frame["problem"]["status"] == 403, frame
    assert code == 4403
    frame, code = asyncio.run(first_frame(live_server.url))
    assert "problem" not in frame, frame
    assert frame["info"]["stream_id"]


def test_a_stream_opened_by_session_with_post_needs_the_csrf_token(live_server, alice):
    """POST …/events (a stream with its parameters in the body) is a Channels consumer."""
    session = session_of(alice)
    with browser(live_server, session) as http:
        subscription = subscribe_over_api(http)
    url = f"/api/subscriptions/{subscription}/events"
    with browser(live_server, session, csrf=False) as http:
        refused = http.post(url, json={"batch_flush_timeout": 1})
        assert refused.status_code == 403
        assert "CSRF" in refused.json()["detail"]
    with (
        browser(live_server, session) as http,
        http.stream("POST", url, json={"batch_flush_timeout": 1}) as opened,
    ):
        assert opened.status_code == 200
        assert opened.headers["X-Nakadi-StreamId"]


def test_another_site_cannot_open_a_subscription_stream_with_the_session(live_server, alice):
    """A top-level navigation from another site carries the session cookie (SameSite=Lax):
    a subscription stream takes partitions and charges deliveries, so it is refused; a
    reader, which changes nothing, is not.
    """
    session = session_of(alice)
    with browser(live_server, session) as http:
        subscription = subscribe_over_api(http)
    cross = {"Sec-Fetch-Site": "cross-site"}
    refused = EventStream(
        live_server.url,
        f"/api/subscriptions/{subscription}/events",
        cookies={"sessionid": session},
        headers=cross,
    )
    try:
        assert refused.status == 403
    finally:
        refused.close()
    with browser(live_server, session) as http:
        reader = http.get(
            "/api/event-types/order.created/events",
            params={"stream_timeout": 1, "batch_flush_timeout": 1},
            headers=cross,
        )
        assert reader.status_code == 200
