"""Subscriptions (Nakadi's contract): idempotent create, list with filters, get, delete."""

from __future__ import annotations

import orjson
import pytest

from events.catalog.clients import create_client
from events.models import EventType, Subscription
from events.store import keys
from events.store.connections import redis_client
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


SEND_COUNT = "nakadi.zalando.org/subscription-max-event-send-count"
POLICY = "nakadi.zalando.org/subscription-unprocessable-event-policy"


def put(client, token, path, body):
    return client.put(path, orjson.dumps(body), content_type="application/json", **bearer(token))


def test_nakadi_s_dead_letter_annotations_set_max_deliveries_and_the_policy(client, consumer):
    annotations = {SEND_COUNT: "3", POLICY: "SKIP_EVENT", "example.org/team": "billing"}
    created = post(client, consumer, subscription(annotations=annotations))
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["annotations"] == annotations  # as sent
    assert (body["max_deliveries"], body["unprocessable_event_policy"]) == (3, "skip")
    stored = Subscription.objects.get()
    assert (stored.max_deliveries, stored.unprocessable_event_policy) == (3, "skip")
    assert client.get(f"/api/subscriptions/{body['id']}", **bearer(consumer)).json() == body
    # The same identity again: the existing subscription, whatever else the body says.
    again = post(client, consumer, subscription(annotations={POLICY: "DEAD_LETTER_QUEUE"}))
    assert (again.status_code, again.json()) == (200, body)


def test_without_annotations_a_subscription_dead_letters_after_the_default(client, consumer):
    body = post(client, consumer, subscription()).json()
    assert body["annotations"] == {}
    assert (body["max_deliveries"], body["unprocessable_event_policy"]) == (10, "dead_letter")
    own = post(
        client,
        consumer,
        subscription(consumer_group="own", max_deliveries=4, unprocessable_event_policy="skip"),
    ).json()
    assert (own["max_deliveries"], own["unprocessable_event_policy"]) == (4, "skip")


def test_the_annotation_and_streamsite_s_own_field_may_say_the_same(client, consumer):
    body = subscription(annotations={SEND_COUNT: "4"}, max_deliveries=4)
    response = post(client, consumer, body)
    assert response.status_code == 201, response.content
    assert response.json()["max_deliveries"] == 4


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (
            {"annotations": {SEND_COUNT: "0"}},
            f'Annotation "{SEND_COUNT}" must be an integer from 1 to 1000, as a string; got "0".',
        ),
        (
            {"annotations": {SEND_COUNT: "many"}},
            f'Annotation "{SEND_COUNT}" must be an integer from 1 to 1000, as a string; '
            'got "many".',
        ),
        (
            {"annotations": {POLICY: "RETRY"}},
            f'Annotation "{POLICY}" must be one of: DEAD_LETTER_QUEUE, SKIP_EVENT; got "RETRY".',
        ),
        (
            {"annotations": {SEND_COUNT: 3}},
            'Field "annotations" must be an object of strings (name to value).',
        ),
        (
            {"annotations": ["a"]},
            'Field "annotations" must be an object of strings (name to value).',
        ),
        (
            {"annotations": {SEND_COUNT: "3"}, "max_deliveries": 5},
            f'Field "max_deliveries" (5) disagrees with the annotation "{SEND_COUNT}" ("3"); '
            "send one of them.",
        ),
        (
            {"annotations": {POLICY: "SKIP_EVENT"}, "unprocessable_event_policy": "dead_letter"},
            f'Field "unprocessable_event_policy" (dead_letter) disagrees with the annotation '
            f'"{POLICY}" ("SKIP_EVENT"); send one of them.',
        ),
        (
            {"unprocessable_event_policy": "SKIP_EVENT"},
            'Field "unprocessable_event_policy" must be dead_letter or skip.',
        ),
    ],
)
def test_annotations_that_cannot_be_honoured_are_refused(client, consumer, change, detail):
    response = post(client, consumer, subscription(**change))
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == detail
    assert not Subscription.objects.exists()


def test_a_put_changes_the_annotations_and_what_they_set(client, consumer):
    created = post(client, consumer, subscription(annotations={SEND_COUNT: "3"})).json()
    path = f"/api/subscriptions/{created['id']}"
    skipping = {SEND_COUNT: "2", POLICY: "SKIP_EVENT"}
    assert put(client, consumer, path, subscription(annotations=skipping)).status_code == 204
    changed = client.get(path, **bearer(consumer)).json()
    assert changed["annotations"] == skipping
    assert (changed["max_deliveries"], changed["unprocessable_event_policy"]) == (2, "skip")
    # Dropped, the annotations set nothing any more: Streamsite's defaults again.
    assert put(client, consumer, path, subscription()).status_code == 204
    dropped = client.get(path, **bearer(consumer)).json()
    assert dropped["annotations"] == {}
    assert (dropped["max_deliveries"], dropped["unprocessable_event_policy"]) == (10, "dead_letter")


def test_a_put_without_annotations_keeps_streamsite_s_own_settings(client, consumer):
    body = subscription(max_deliveries=4, unprocessable_event_policy="skip")
    created = post(client, consumer, body).json()
    path = f"/api/subscriptions/{created['id']}"
    assert put(client, consumer, path, subscription()).status_code == 204  # as clin sends it
    assert client.get(path, **bearer(consumer)).json() == created


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"annotations": {SEND_COUNT: "x"}}, f'Annotation "{SEND_COUNT}" must be an integer'),
        ({"max_deliveries": 4}, "Not allowed to change max_deliveries."),
        (
            {"unprocessable_event_policy": "skip"},
            "Not allowed to change unprocessable_event_policy.",
        ),
        (
            {"annotations": {SEND_COUNT: "4"}, "max_deliveries": 5},
            'Field "max_deliveries" (5) disagrees with the annotation',
        ),
    ],
)
def test_a_put_that_cannot_be_honoured_changes_nothing(client, consumer, change, detail):
    created = post(client, consumer, subscription()).json()
    path = f"/api/subscriptions/{created['id']}"
    response = put(client, consumer, path, subscription(**change))
    assert response.status_code == 422, response.content
    assert response.json()["detail"].startswith(detail)
    assert client.get(path, **bearer(consumer)).json() == created


SKIP_NEEDS_TWO = (
    f'Skipping (unprocessable_event_policy "skip", annotation "{POLICY}": "SKIP_EVENT") '
    f'needs at least 2 deliveries (max_deliveries, annotation "{SEND_COUNT}"), so that a '
    "healthy event that shared a batch with a poison one gets a try of its own; got 1."
)


@pytest.mark.parametrize(
    "change",
    [
        {"max_deliveries": 1, "unprocessable_event_policy": "skip"},
        {"annotations": {SEND_COUNT: "1", POLICY: "SKIP_EVENT"}},
        {"annotations": {SEND_COUNT: "1"}, "unprocessable_event_policy": "skip"},
        {"annotations": {POLICY: "SKIP_EVENT"}, "max_deliveries": 1},
    ],
)
def test_skipping_after_a_single_delivery_is_refused(client, consumer, change):
    """A failed delivery is charged to a whole batch: with one delivery, a healthy event
    that shared it with a poison one would be skipped without a try of its own."""
    response = post(client, consumer, subscription(**change))
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == SKIP_NEEDS_TWO
    assert not Subscription.objects.exists()


def test_one_delivery_is_allowed_with_dead_letters(client, consumer):
    body = subscription(annotations={SEND_COUNT: "1", POLICY: "DEAD_LETTER_QUEUE"})
    created = post(client, consumer, body)
    assert created.status_code == 201, created.content
    assert created.json()["max_deliveries"] == 1


@pytest.mark.parametrize(
    ("stored", "change"),
    [
        ({"annotations": {SEND_COUNT: "3", POLICY: "SKIP_EVENT"}}, {SEND_COUNT: "1"}),
        ({"max_deliveries": 1}, {POLICY: "SKIP_EVENT"}),  # the stored count stays
        ({"unprocessable_event_policy": "skip"}, {SEND_COUNT: "1"}),  # the stored policy too
    ],
)
def test_a_put_that_would_skip_after_a_single_delivery_changes_nothing(
    client, consumer, stored, change
):
    created = post(client, consumer, subscription(**stored)).json()
    path = f"/api/subscriptions/{created['id']}"
    annotations = {**created["annotations"], **change}
    response = put(client, consumer, path, subscription(annotations=annotations))
    assert response.status_code == 422, response.content
    assert response.json()["detail"] == SKIP_NEEDS_TWO
    assert client.get(path, **bearer(consumer)).json() == created


def test_a_put_is_checked_on_the_settings_it_makes(client, consumer):
    """Dropping the send count of 1 while adding SKIP_EVENT skips after the default."""
    created = post(client, consumer, subscription(annotations={SEND_COUNT: "1"})).json()
    path = f"/api/subscriptions/{created['id']}"
    echoed = {**created, "annotations": {POLICY: "SKIP_EVENT"}}  # max_deliveries 1 echoed
    assert put(client, consumer, path, echoed).status_code == 204
    changed = client.get(path, **bearer(consumer)).json()
    assert (changed["max_deliveries"], changed["unprocessable_event_policy"]) == (10, "skip")


def test_a_subscription_read_back_and_put_with_other_annotations_takes_them(client, consumer):
    """What a GET renders, PUT back with an annotation changed: the echoed fields are as
    stored, so the annotations decide (as they do when the fields are left out)."""
    annotations = {SEND_COUNT: "3", POLICY: "SKIP_EVENT"}
    created = post(client, consumer, subscription(annotations=annotations)).json()
    path = f"/api/subscriptions/{created['id']}"
    read = client.get(path, **bearer(consumer)).json()
    changed = {SEND_COUNT: "5", POLICY: "DEAD_LETTER_QUEUE"}
    response = put(client, consumer, path, {**read, "annotations": changed})
    assert response.status_code == 204, response.content
    after = client.get(path, **bearer(consumer)).json()
    assert (after["max_deliveries"], after["unprocessable_event_policy"]) == (5, "dead_letter")
    # Read back again and PUT without the annotations: Streamsite's defaults again.
    response = put(client, consumer, path, {**after, "annotations": {}})
    assert response.status_code == 204, response.content
    dropped = client.get(path, **bearer(consumer)).json()
    assert dropped["annotations"] == {}
    assert (dropped["max_deliveries"], dropped["unprocessable_event_policy"]) == (10, "dead_letter")


def test_a_put_that_echoes_another_value_than_stored_is_still_refused(client, consumer):
    created = post(client, consumer, subscription(annotations={SEND_COUNT: "3"})).json()
    path = f"/api/subscriptions/{created['id']}"
    body = {**created, "annotations": {SEND_COUNT: "5"}, "max_deliveries": 4}
    response = put(client, consumer, path, body)
    assert response.status_code == 422, response.content
    assert response.json()["detail"].startswith('Field "max_deliveries" (4) disagrees')
    dropped = {**created, "annotations": {}, "max_deliveries": 4}
    response = put(client, consumer, path, dropped)
    assert response.status_code == 422, response.content
    assert response.json()["detail"] == "Not allowed to change max_deliveries."
    assert client.get(path, **bearer(consumer)).json() == created


def test_deleting_a_subscription_forgets_its_count_of_skipped_events(client, consumer):
    created = post(client, consumer, subscription(unprocessable_event_policy="skip")).json()
    store_id = EventType.objects.get(name="order.created").store_id
    counter = keys.skipped_key(store_id, 1, created["id"])
    redis_client().incr(counter)  # as the claim scripts count what they skip
    assert (
        client.delete(f"/api/subscriptions/{created['id']}", **bearer(consumer)).status_code == 204
    )
    assert not redis_client().exists(counter)
