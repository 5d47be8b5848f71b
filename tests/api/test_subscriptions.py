"""Subscriptions (Nakadi's contract): idempotent create, list with filters, get, delete."""

from __future__ import annotations

import orjson
import pytest

from events.catalog.clients import create_client
from events.models import Subscription
from tests.conftest import bearer
from tests.helpers import event_type_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def consumer(client, admin_token):
    for name, partitions in (("order.created", 2), ("order.paid", 1)):
        body = event_type_body(name, partitions=partitions)
        response = client.post(
            "/api/event-types",
            orjson.dumps(body),
            content_type="application/json",
            **bearer(admin_token),
        )
        assert response.status_code == 201
    return create_client("billing", consume=["order.*"])[1]


def post(client, token, body):
    return client.post(
        "/api/subscriptions", orjson.dumps(body), content_type="application/json", **bearer(token)
    )


def subscription(**extra):
    return {"owning_application": "billing", "event_types": ["order.created"], **extra}


def test_it_creates_a_subscription_once_per_identity(client, consumer):
    created = post(client, consumer, subscription())
    assert created.status_code == 201, created.content
    body = created.json()
    assert created["Location"] == created["Content-Location"] == f"/api/subscriptions/{body['id']}"
    assert body["consumer_group"] == "default"
    assert body["read_from"] == "end"
    assert (body["commit_timeout"], body["max_deliveries"], body["mode"]) == (60, 10, "ordered")
    again = post(client, consumer, subscription(read_from="begin"))
    assert again.status_code == 200
    assert again.json() == body  # the existing one, unchanged
    other_group = post(client, consumer, subscription(consumer_group="audit"))
    assert other_group.status_code == 201
    assert Subscription.objects.count() == 2


def test_it_takes_integers_written_with_a_fraction_of_zero(client, consumer):
    """JSON Schema's `integer` takes 30.0, and so do some encoders write 30."""
    body = subscription(commit_timeout=30.0, max_deliveries=5.0, ack_timeout=10.0)
    created = post(client, consumer, body)
    assert created.status_code == 201, created.content
    fields = created.json()
    assert (fields["commit_timeout"], fields["max_deliveries"], fields["ack_timeout"]) == (
        30,
        5,
        10,
    )
    assert post(client, consumer, subscription(commit_timeout=30.5)).status_code == 422


def test_the_event_types_are_a_set(client, consumer):
    first = post(client, consumer, subscription(event_types=["order.paid", "order.created"]))
    second = post(client, consumer, subscription(event_types=["order.created", "order.paid"]))
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["event_types"] == ["order.created", "order.paid"]


def test_initial_cursors_must_cover_every_partition(client, consumer):
    cursors = [{"event_type": "order.created", "partition": "0", "offset": "BEGIN"}]
    response = post(client, consumer, subscription(read_from="cursors", initial_cursors=cursors))
    assert response.status_code == 422
    assert "order.created/1" in response.json()["detail"]
    cursors.append({"event_type": "order.created", "partition": "1", "offset": "1700000000000-3"})
    response = post(client, consumer, subscription(read_from="cursors", initial_cursors=cursors))
    assert response.status_code == 201
    assert response.json()["initial_cursors"] == cursors


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"event_types": []}, "event_types"),
        ({"event_types": ["order.unknown"]}, "order.unknown"),
        ({"owning_application": ""}, "owning_application"),
        ({"read_from": "middle"}, "read_from"),
        ({"commit_timeout": 0}, "commit_timeout"),
        ({"max_deliveries": True}, "max_deliveries"),
        (
            {
                "read_from": "cursors",
                "initial_cursors": [
                    {"event_type": "order.created", "partition": "0", "offset": "yesterday"},
                    {"event_type": "order.created", "partition": "1", "offset": "BEGIN"},
                ],
            },
            "yesterday",
        ),
        (
            {
                "initial_cursors": [
                    {"event_type": "order.created", "partition": "0", "offset": "BEGIN"}
                ]
            },
            "read_from",
        ),
    ],
)
def test_it_refuses_an_invalid_subscription(client, consumer, change, detail):
    response = post(client, consumer, subscription(**change))
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert detail in response.json()["detail"]
    assert not Subscription.objects.exists()


def test_it_needs_the_consume_grant_on_every_event_type(client, consumer, producer_token):
    assert post(client, producer_token, subscription()).status_code == 403
    assert not Subscription.objects.exists()


def test_it_lists_filters_and_pages(client, consumer):
    for group in ("a", "b", "c"):
        post(client, consumer, subscription(consumer_group=group))
    post(client, consumer, subscription(event_types=["order.paid"], owning_application="shop"))
    listed = client.get("/api/subscriptions?event_type=order.created&limit=2", **bearer(consumer))
    page = listed.json()
    assert [s["consumer_group"] for s in page["items"]] == ["c", "b"]  # newest first
    assert "prev" not in page["_links"]
    following = client.get(page["_links"]["next"]["href"], **bearer(consumer)).json()
    assert [s["consumer_group"] for s in following["items"]] == ["a"]
    assert "next" not in following["_links"]
    assert following["_links"]["prev"]["href"].startswith("/api/subscriptions?event_type=order.")
    shop = client.get("/api/subscriptions?owning_application=shop", **bearer(consumer)).json()
    assert [s["event_types"] for s in shop["items"]] == [["order.paid"]]
    both = "/api/subscriptions?event_type=order.created&event_type=order.paid"
    assert client.get(both, **bearer(consumer)).json()["items"] == []


def test_it_gets_and_deletes_a_subscription(client, consumer):
    created = post(client, consumer, subscription()).json()
    path = f"/api/subscriptions/{created['id']}"
    assert client.get(path, **bearer(consumer)).json() == created
    assert client.delete(path, **bearer(consumer)).status_code == 204
    assert client.get(path, **bearer(consumer)).status_code == 404
    assert client.get("/api/subscriptions/not-a-uuid", **bearer(consumer)).status_code == 404


def test_an_event_type_with_subscriptions_cannot_be_deleted(client, consumer, admin_token):
    post(client, consumer, subscription())
    response = client.delete("/api/event-types/order.created", **bearer(admin_token))
    assert response.status_code == 409
    assert "subscriptions" in response.json()["detail"]
