"""The dashboard's pages and JSON views through Django's test client, against the test
session's Redis: who may see them, and what they report.
"""

from __future__ import annotations

import orjson
import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from events.models import DeadLetter, EventType
from events.store import history, partitions, sessions
from events.store.connections import redis_client
from events.store.keys import sessions_key
from streamsite.processes import wait_until
from tests.conftest import bearer
from tests.helpers import business_event, event_type_body, subscribe

pytestmark = pytest.mark.django_db

OVERVIEW = "/dashboard/api/overview.json"


@pytest.fixture
def staff(client) -> Client:
    """A logged-in staff user with the admin's permissions on dead letters."""
    user = User.objects.create_user("watcher", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="change_deadletter"))
    client.force_login(user)
    return client


@pytest.fixture
def order_type(client, producer_token) -> EventType:
    response = client.post(
        "/api/event-types",
        orjson.dumps(event_type_body(partitions=2)),
        content_type="application/json",
        **bearer(producer_token),
    )
    assert response.status_code == 201, response.content
    return EventType.objects.get(name="order.created")


def publish(client, token: str, count: int, prefix: str = "A") -> None:
    events = [business_event(f"{prefix}-{i}") for i in range(count)]
    response = client.post(
        "/api/event-types/order.created/events",
        orjson.dumps(events),
        content_type="application/json",
        **bearer(token),
    )
    assert response.status_code == 200, response.content


def test_anyone_but_staff_is_sent_to_the_admin_login(client):
    for path in ["/dashboard/", "/dashboard/subscriptions/00000000-0000-0000-0000-000000000000/"]:
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"] == f"/admin/login/?next={path}"
    client.force_login(User.objects.create_user("someone", password="pw"))
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_json_views_answer_anyone_but_staff_with_a_403_problem(client):
    for caller in [None, User.objects.create_user("someone", password="pw")]:
        if caller is not None:
            client.force_login(caller)
        response = client.get(OVERVIEW)
        assert response.status_code == 403
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["status"] == 403


def test_staff_get_the_pages_and_the_admin_links_to_them(staff, admin_client, order_type):
    page = staff.get("/dashboard/")
    assert page.status_code == 200
    assert b"uPlot.iife.min.js" in page.content
    assert b'data-poll="/dashboard/api/overview.json"' in page.content
    page = staff.get("/dashboard/event-types/order.created/")
    assert page.status_code == 200
    assert b'data-stream="/api/event-types/order.created/events"' in page.content
    assert staff.get("/dashboard/event-types/nothing.here/").status_code == 404
    assert 'href="/dashboard/"' in admin_client.get("/admin/").content.decode()


def test_the_overview_counts_what_is_published_and_its_rate_moves(
    staff, client, producer_token, order_type
):
    first = staff.get(OVERVIEW).json()
    [row] = first["event_types"]
    assert (row["name"], row["partitions"], row["size"], row["published"]) == (
        "order.created",
        2,
        0,
        0,
    )
    assert row["url"] == "/dashboard/event-types/order.created/"
    assert first["health"]["redis"]["ok"]
    assert first["health"]["database"]["ok"]
    assert not first["health"]["workers"]["ok"]  # no worker runs in this test
    assert {job["name"] for job in first["health"]["jobs"]} >= {"reclaim", "stats"}

    publish(client, producer_token, 5)
    since = first["newest_sample"]
    seen: dict = {}

    def rate_moved() -> bool:
        seen.update(staff.get(OVERVIEW, {"since": since}).json()["event_types"][0])
        return any(rate > 0 for _, rate in seen["points"])

    wait_until(rate_moved, timeout=3, interval=0.1, message="a positive rate")
    assert (seen["size"], seen["published"]) == (5, 5)


def test_history_keeps_an_hour_of_samples():
    client = redis_client()
    history.record_published(client, ["s1"], [3])
    [[(at, count)]] = history.published_since(client, ["s1"], 0)
    assert count == 3
    client.zadd(
        "ss:stats:published:s1", {f"{at - history.KEEP_MS - 1}:1": at - history.KEEP_MS - 1}
    )
    history.record_published(client, ["s1"], [4])
    [samples] = history.published_since(client, ["s1"], 0)
    assert [n for _, n in samples] == [3, 4]  # the sample older than an hour is gone


def test_a_subscription_shows_its_partitions_sessions_and_dead_letters(
    staff, client, producer_token, order_type
):
    subscription = subscribe("order.created")
    publish(client, producer_token, 4)
    # A live session, registered as a stream session registers.
    redis_client().zadd(sessions_key(str(subscription.pk)), {"session-1": 2**50})
    dead = DeadLetter.objects.create(
        subscription=subscription,
        event_type=order_type,
        partition=1,
        offset="1-0",
        body=orjson.dumps(business_event("D-1")).decode(),
        deliveries=11,
        reason="max_deliveries",
    )
    body = staff.get(f"/dashboard/api/subscriptions/{subscription.pk}.json").json()
    assert body["unconsumed"] == 4
    assert [(p["event_type"], p["partition"]) for p in body["partitions"]] == [
        ("order.created", 0),
        ("order.created", 1),
    ]
    assert body["sessions"] == [{"id": "session-1", "partitions": []}]
    assert [d["id"] for d in body["dead_letters"]] == [dead.pk]
    assert "D-1" in body["dead_letters"][0]["body"]
    # An event is data: staff who may not view dead letters in the admin see none of it.
    User.objects.get(username="watcher").user_permissions.clear()
    again = staff.get(f"/dashboard/api/subscriptions/{subscription.pk}.json").json()
    assert again["dead_letters"][0]["body"] == ""
    [sample] = body["lag"]
    assert sum(sample["unconsumed"].values()) == 4

    overview = staff.get(OVERVIEW).json()
    [row] = overview["subscriptions"]
    assert (row["unconsumed"], row["sessions"], row["dead_letters"]) == (4, 1, 1)
    assert sessions.count_live(redis_client(), [str(subscription.pk)]) == [1]


def test_a_replay_needs_csrf_and_the_permission_and_happens_once(
    staff, client, producer_token, order_type
):
    subscription = subscribe("order.created")
    dead = DeadLetter.objects.create(
        subscription=subscription,
        event_type=order_type,
        partition=0,
        offset="1-0",
        body=orjson.dumps(business_event("D-1")).decode(),
        deliveries=11,
        reason="max_deliveries",
    )
    url = f"/dashboard/api/dead-letters/{dead.pk}/replay"
    strict = Client(enforce_csrf_checks=True)
    user = User.objects.get(username="watcher")
    strict.force_login(user)
    assert strict.post(url).status_code == 403  # no CSRF token

    page = strict.get(f"/dashboard/subscriptions/{subscription.pk}/")
    token = page.context["csrf_token"]
    response = strict.post(url, HTTP_X_CSRFTOKEN=str(token))
    assert response.status_code == 200, response.content
    offset = response.json()["offset"]
    infos = partitions.partition_info(order_type.store_id, [0])
    assert infos[0].newest_available_offset == offset
    assert strict.post(url, HTTP_X_CSRFTOKEN=str(token)).status_code == 409

    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    strict.force_login(viewer)
    page = strict.get(f"/dashboard/subscriptions/{subscription.pk}/")
    response = strict.post(url, HTTP_X_CSRFTOKEN=str(page.context["csrf_token"]))
    assert response.status_code == 403
