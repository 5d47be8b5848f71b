"""Nakadi's own tools work unmodified (issue 14): what clin 1.8.0 sends, sent as it sends
it (tests/clin.py), answered as Nakadi answers it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from events.catalog.clients import create_client
from events.models import EventType
from tests import clin
from tests.helpers import ORDER_SCHEMA

pytestmark = pytest.mark.django_db

WITH_NOTE = {
    **ORDER_SCHEMA,
    "properties": {**ORDER_SCHEMA["properties"], "note": {"type": "string"}},
}


def send(client: Any, method: str, path: str, token: str, body: Any = None) -> Any:
    """A request as clin's `requests` call makes it: json.dumps of the body, clin's headers."""
    data = json.dumps(body) if body is not None else ""
    return client.generic(
        method, path, data, content_type="application/json", **clin.headers(token)
    )


def test_a_schema_change_keeps_the_statistic_of_a_type_with_several_partitions(
    client, producer_token
):
    created = send(
        client, "POST", "/api/event-types", producer_token, clin.event_type(partitions=3)
    )
    assert created.status_code == 201, created.content
    changed = clin.event_type(partitions=3, with_statistic=False, schema=WITH_NOTE)
    response = send(client, "PUT", "/api/event-types/order.created", producer_token, changed)
    assert response.status_code == 200, response.content
    stored = send(client, "GET", "/api/event-types/order.created", producer_token).json()
    assert stored["default_statistic"] == {
        "messages_per_minute": 1,
        "message_size": 1,
        "read_parallelism": 3,
        "write_parallelism": 3,
    }
    assert stored["schema"]["version"] == "1.1.0"
    partitions = send(client, "GET", "/api/event-types/order.created/partitions", producer_token)
    assert len(partitions.json()) == 3  # how clin reads the partition count back


def test_a_statistic_that_changes_the_number_of_partitions_is_still_refused(client, producer_token):
    send(client, "POST", "/api/event-types", producer_token, clin.event_type(partitions=3))
    response = send(
        client, "PUT", "/api/event-types/order.created", producer_token, clin.event_type()
    )
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == "default_statistic can not change the number of partitions."
    assert EventType.objects.get().partition_count == 3


@pytest.fixture
def billing(client, admin_token):
    """order.created and order.paid, and the billing service that consumes them."""
    for name in ("order.created", "order.paid"):
        body = clin.event_type(name, owner="ops")
        assert send(client, "POST", "/api/event-types", admin_token, body).status_code == 201
    return create_client("billing", consume=["order.*"])[1]


def test_clin_finds_a_subscription_by_its_event_types_joined_by_commas(client, billing):
    both = clin.subscription(["order.created", "order.paid"])
    created = send(client, "POST", "/api/subscriptions", billing, both).json()
    send(client, "POST", "/api/subscriptions", billing, clin.subscription(["order.created"]))
    query = clin.find_subscription_query(["order.paid", "order.created"], "billing")
    assert query == "event_type=order.paid%2Corder.created&owning_application=billing"
    found = send(client, "GET", f"/api/subscriptions?{query}", billing).json()["items"]
    assert [item["id"] for item in found] == [created["id"]]
    repeated = "event_type=order.paid&event_type=order.created"
    found = send(client, "GET", f"/api/subscriptions?{repeated}", billing).json()["items"]
    assert [item["id"] for item in found] == [created["id"]]
    one = send(client, "GET", "/api/subscriptions?event_type=order.created", billing).json()
    assert len(one["items"]) == 2


def test_a_subscription_keeps_its_authorization(client, billing):
    body = clin.subscription(["order.created"], readers=["billing", "audit"])
    created = send(client, "POST", "/api/subscriptions", billing, body)
    assert created.status_code == 201, created.content
    assert created.json()["authorization"] == {
        "admins": [{"data_type": "service", "value": "billing"}],
        "readers": [
            {"data_type": "service", "value": "billing"},
            {"data_type": "service", "value": "audit"},
        ],
    }
    path = f"/api/subscriptions/{created.json()['id']}"
    assert send(client, "GET", path, billing).json() == created.json()


def test_clin_changes_a_subscription_s_authorization_with_put(client, billing):
    body = clin.subscription(["order.created", "order.paid"])
    created = send(client, "POST", "/api/subscriptions", billing, body).json()
    path = f"/api/subscriptions/{created['id']}"
    changed = clin.subscription(["order.created", "order.paid"], readers=["audit"])
    response = send(client, "PUT", path, billing, changed)
    assert response.status_code == 204, response.content
    assert response.content == b""
    stored = send(client, "GET", path, billing).json()
    assert stored["authorization"] == changed["authorization"]
    assert stored["id"] == created["id"]
    assert stored["updated_at"] >= created["updated_at"]


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"consumer_group": "audit"}, "Not allowed to change subscription consumer group."),
        ({"event_types": ["order.paid"]}, "Not allowed to change subscription event types."),
        ({"owning_application": "shop"}, "Not allowed to change owning application."),
        ({"read_from": "begin"}, "Not allowed to change read from."),
        ({"max_deliveries": 3}, "Not allowed to change max_deliveries."),
        (
            {"authorization": None},
            "Changing authorization object to `null` is not possible due to existing one.",
        ),
        ({"authorization": {"admins": [], "readers": []}}, 'Field "authorization" must be'),
    ],
)
def test_a_put_that_changes_more_than_the_authorization_is_refused(client, billing, change, detail):
    body = clin.subscription(["order.created"])
    created = send(client, "POST", "/api/subscriptions", billing, body).json()
    path = f"/api/subscriptions/{created['id']}"
    response = send(client, "PUT", path, billing, {**body, **change})
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"].startswith(detail)
    assert send(client, "GET", path, billing).json() == created


@pytest.mark.parametrize(
    "authorization",
    [
        {"admins": [{"data_type": "service", "value": "billing"}]},
        {"admins": [{"data_type": "service"}], "readers": [{"data_type": "*", "value": "*"}]},
        "billing",
    ],
)
def test_a_subscription_authorization_of_another_shape_is_refused(client, billing, authorization):
    body = {**clin.subscription(["order.created"]), "authorization": authorization}
    response = send(client, "POST", "/api/subscriptions", billing, body)
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"].startswith('Field "authorization" must be {admins, readers}')


SELECTOR = {"type": "path", "name": "retailer_id", "value": "security.owner"}
ANNOTATIONS = {"nakadi.zalando.org/retention-period": "1 day", "team": "checkout"}


def test_an_event_type_keeps_annotations_labels_and_event_owner_selector(client, producer_token):
    body = {
        **clin.event_type(annotations=ANNOTATIONS, event_owner_selector=SELECTOR),
        "labels": {"domain": "orders"},
    }
    created = send(client, "POST", "/api/event-types", producer_token, body)
    assert created.status_code == 201, created.content
    stored = send(client, "GET", "/api/event-types/order.created", producer_token).json()
    assert stored == created.json()
    assert (stored["annotations"], stored["labels"]) == (ANNOTATIONS, {"domain": "orders"})
    assert stored["event_owner_selector"] == SELECTOR
    again = {
        **clin.event_type(with_statistic=False, annotations={"team": "payments"}),
        "event_owner_selector": SELECTOR,
    }
    response = send(client, "PUT", "/api/event-types/order.created", producer_token, again)
    assert response.status_code == 200, response.content
    assert response.json()["annotations"] == {"team": "payments"}
    assert response.json()["labels"] == {}  # a PUT replaces the whole definition


def test_a_type_without_them_has_empty_maps_and_no_selector(client, producer_token):
    body = send(client, "POST", "/api/event-types", producer_token, clin.event_type()).json()
    assert (body["annotations"], body["labels"]) == ({}, {})
    assert "event_owner_selector" not in body  # as Nakadi: omitted when null


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"annotations": {"team": 1}}, 'Field "annotations" must be an object of strings'),
        ({"labels": ["orders"]}, 'Field "labels" must be an object of strings'),
        ({"event_owner_selector": {**SELECTOR, "type": "regex"}}, 'Field "event_owner_selector"'),
        (
            {"event_owner_selector": {"type": "static", "value": "x"}},
            'Field "event_owner_selector"',
        ),
        (
            {"event_owner_selector": {**SELECTOR, "type": "metadata"}},
            "event_owner_selector specifying value for type 'metadata' is not supported.",
        ),
    ],
)
def test_annotations_labels_and_selector_of_another_shape_are_refused(
    client, producer_token, change, detail
):
    response = send(
        client, "POST", "/api/event-types", producer_token, {**clin.event_type(), **change}
    )
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"].startswith(detail)
    assert not EventType.objects.exists()


@pytest.mark.parametrize(
    ("selector", "detail"),
    [
        ({**SELECTOR, "value": "owner"}, "event_owner_selector must not be changed."),
        (None, "event_owner_selector can't be set back to null."),
    ],
)
def test_only_an_admin_changes_an_event_owner_selector(
    client, producer_token, admin_token, selector, detail
):
    body = clin.event_type(event_owner_selector=SELECTOR)
    send(client, "POST", "/api/event-types", producer_token, body)
    changed = clin.event_type(with_statistic=False, event_owner_selector=selector)
    response = send(client, "PUT", "/api/event-types/order.created", producer_token, changed)
    assert response.status_code == 422, response.content
    assert response.json()["detail"] == detail
    assert EventType.objects.get().event_owner_selector == SELECTOR
    response = send(client, "PUT", "/api/event-types/order.created", admin_token, changed)
    assert response.status_code == 200, response.content
    assert EventType.objects.get().event_owner_selector == selector
