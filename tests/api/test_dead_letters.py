"""A subscription's dead letters over the API: listed a page at a time, read, replayed and
discarded, by clients that may consume the subscription (owner, other client, anonymous).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from events.catalog.clients import create_client
from events.models import DeadLetter, EventType, Subscription
from events.store import keys
from events.store.connections import redis_client
from streamsite.processes import free_port
from tests.conftest import bearer
from tests.helpers import business_event, event_type_row, subscribe

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid_type(order_type: EventType) -> EventType:
    return event_type_row("payment.received", owning_application="bank")


@pytest.fixture
def billing(order_type: EventType) -> Subscription:
    """The owner's subscription to order.created."""
    return subscribe("order.created")


@pytest.fixture
def owner_token() -> str:
    """The billing service: it may consume order.*."""
    return create_client("billing", consume=["order.*"])[1]


@pytest.fixture
def other_token() -> str:
    """Another client: it may consume payment.* only."""
    return create_client("audit", consume=["payment.*"])[1]


def bury(
    subscription: Subscription, event_type: EventType, offset: str, **fields: object
) -> DeadLetter:
    """A dead letter of `subscription`, as the job stores it."""
    return DeadLetter.objects.create(
        subscription=subscription,
        event_type=event_type,
        partition=fields.pop("partition", 0),
        offset=offset,
        body=orjson.dumps(fields.pop("event", business_event())).decode(),
        deliveries=fields.pop("deliveries", 11),
        reason=fields.pop("reason", "max_deliveries"),
        **fields,
    )


def url(subscription: Subscription | str, *rest: object) -> str:
    key = subscription.pk if isinstance(subscription, Subscription) else subscription
    return "/".join([f"/api/subscriptions/{key}/dead-letters", *map(str, rest)])


def get(client, path: str, token: str | None, **params: object):
    return client.get(path, params, **(bearer(token) if token else {}))


def offsets(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["offset"] for item in response.json()["items"]]


def assert_problem(response, status: int, words: str = "") -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == status
    assert words in response.json()["detail"]


# -- listing ---------------------------------------------------------------------------


def test_it_lists_a_subscription_s_dead_letters_newest_first_with_their_events(
    client, owner_token, billing, order_type
):
    event = business_event("A-77")
    created = timezone.now() - timedelta(minutes=5)
    replayed = bury(
        billing,
        order_type,
        "1795252632832-0",
        partition=1,
        event=event,
        deliveries=12,
        reason="max_deliveries",
        status=DeadLetter.Status.REPLAYED,
        created_at=created,
        replayed_at=created + timedelta(minutes=1),
    )
    newest = bury(billing, order_type, "1795252632999-3")
    response = get(client, url(billing), owner_token)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["_links"] == {}
    assert [item["id"] for item in body["items"]] == [newest.pk, replayed.pk]
    assert body["items"][1] == {
        "id": replayed.pk,
        "event_type": "order.created",
        "partition": "1",
        "offset": "1795252632832-0",
        "event": event,
        "deliveries": 12,
        "reason": "max_deliveries",
        "status": "replayed",
        "created_at": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "replayed_at": (created + timedelta(minutes=1))
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
    }
    assert body["items"][0]["status"] == "dead"
    assert body["items"][0]["replayed_at"] is None


def test_it_shows_only_the_subscription_s_own_dead_letters(
    client, owner_token, billing, order_type
):
    bury(billing, order_type, "1-0")
    bury(subscribe("order.created", group="audit"), order_type, "2-0")
    assert offsets(get(client, url(billing), owner_token)) == ["1-0"]


def test_it_pages_as_nakadi_pages_subscriptions(client, owner_token, billing, order_type):
    now = timezone.now()
    for i in range(5):
        bury(billing, order_type, f"{i}-0", created_at=now + timedelta(seconds=i))
    first = get(client, url(billing), owner_token, limit=2)
    assert offsets(first) == ["4-0", "3-0"]
    links = first.json()["_links"]
    assert set(links) == {"next"}
    assert links["next"]["href"] == f"{url(billing)}?limit=2&offset=2"
    second = get(client, links["next"]["href"], owner_token)
    assert offsets(second) == ["2-0", "1-0"]
    assert set(second.json()["_links"]) == {"prev", "next"}
    last = get(client, second.json()["_links"]["next"]["href"], owner_token)
    assert offsets(last) == ["0-0"]
    assert set(last.json()["_links"]) == {"prev"}
    assert len(offsets(get(client, url(billing), owner_token, limit=1000))) == 5


def test_it_lists_twenty_by_default(client, owner_token, billing, order_type):
    DeadLetter.objects.bulk_create(
        DeadLetter(
            subscription=billing,
            event_type=order_type,
            partition=0,
            offset=f"{i}-0",
            body="{}",
            deliveries=11,
            reason="max_deliveries",
        )
        for i in range(21)
    )
    first = get(client, url(billing), owner_token)
    assert len(offsets(first)) == 20
    assert first.json()["_links"]["next"]["href"].endswith("offset=20&limit=20")


def test_it_filters_by_status_and_keeps_the_filter_in_its_links(
    client, owner_token, billing, order_type
):
    bury(billing, order_type, "1-0")
    bury(billing, order_type, "2-0", status=DeadLetter.Status.REPLAYED)
    bury(billing, order_type, "3-0")
    dead = get(client, url(billing), owner_token, status="dead", limit=1)
    assert offsets(dead) == ["3-0"]
    assert dead.json()["_links"]["next"]["href"] == f"{url(billing)}?status=dead&limit=1&offset=1"
    assert offsets(get(client, url(billing), owner_token, status="replayed")) == ["2-0"]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"limit": "ten"},
        {"offset": -1},
        {"offset": "x"},
        {"status": "lost"},
        {"status": ""},
    ],
    ids=lambda params: "&".join(f"{k}={v}" for k, v in params.items()),
)
def test_it_refuses_bad_parameters_with_422(client, owner_token, billing, params):
    assert_problem(get(client, url(billing), owner_token, **params), 422)


# -- who may ---------------------------------------------------------------------------


def test_it_answers_404_for_a_subscription_that_does_not_exist(client, owner_token):
    assert_problem(get(client, url(uuid.uuid4()), owner_token), 404, "does not exist")
    assert_problem(get(client, url("not-a-uuid"), owner_token), 404, "does not exist")


def test_it_asks_an_anonymous_caller_for_a_token(client, billing, order_type):
    dead = bury(billing, order_type, "1-0")
    for response in (
        client.get(url(billing)),
        client.get(url(billing), HTTP_AUTHORIZATION="Bearer nope"),
        client.post(url(billing, dead.pk, "replay")),
        client.delete(url(billing, dead.pk)),
    ):
        assert_problem(response, 401)
        assert response["WWW-Authenticate"] == 'Bearer realm="streamsite"'
    assert DeadLetter.objects.get().status == DeadLetter.Status.DEAD


def test_it_refuses_another_client_without_the_consume_grant(
    client, other_token, billing, order_type
):
    dead = bury(billing, order_type, "1-0")
    assert_problem(get(client, url(billing), other_token), 403, "no consume grant")
    assert_problem(get(client, url(billing, dead.pk), other_token), 403)
    assert_problem(client.post(url(billing, dead.pk, "replay"), **bearer(other_token)), 403)
    assert_problem(client.delete(url(billing, dead.pk), **bearer(other_token)), 403)
    dead.refresh_from_db()
    assert dead.status == DeadLetter.Status.DEAD
    assert redis_client().xlen(keys.log_key(order_type.store_id, 0)) == 0


def test_it_needs_the_consume_grant_on_every_event_type_of_the_subscription(
    client, owner_token, admin_token, order_type, paid_type
):
    both = subscribe("order.created", "payment.received")
    bury(both, paid_type, "1-0")
    assert_problem(get(client, url(both), owner_token), 403, "payment.received")
    assert offsets(get(client, url(both), admin_token)) == ["1-0"]


# -- one dead letter -------------------------------------------------------------------


def test_it_shows_one_dead_letter_of_the_subscription_only(
    client, owner_token, billing, order_type
):
    dead = bury(billing, order_type, "1-0")
    other = bury(subscribe("order.created", group="audit"), order_type, "2-0")
    response = get(client, url(billing, dead.pk), owner_token)
    assert response.status_code == 200
    assert response.json()["offset"] == "1-0"
    assert response.json()["id"] == dead.pk
    assert_problem(get(client, url(billing, other.pk), owner_token), 404, "no dead letter")
    assert_problem(get(client, url(billing, "nine"), owner_token), 404)


def test_it_replays_a_dead_letter_to_its_subscription_once(
    client, owner_token, billing, order_type
):
    dead = bury(billing, order_type, "1-0", partition=1)
    response = client.post(url(billing, dead.pk, "replay"), **bearer(owner_token))
    assert response.status_code == 200, response.content
    offset = response.json()["offset"]
    assert response.json() == {"offset": offset}
    ((entry_id, fields),) = redis_client().xrange(keys.log_key(order_type.store_id, 1))
    assert entry_id.decode() == offset
    assert fields == {b"e": dead.body.encode(), b"r": str(billing.pk).encode()}
    dead.refresh_from_db()
    assert dead.status == DeadLetter.Status.REPLAYED
    assert dead.replayed_at is not None
    shown = get(client, url(billing, dead.pk), owner_token).json()
    assert (shown["status"], shown["replayed_at"] is not None) == ("replayed", True)
    again = client.post(url(billing, dead.pk, "replay"), **bearer(owner_token))
    assert_problem(again, 409, "replayed already")
    assert redis_client().xlen(keys.log_key(order_type.store_id, 1)) == 1


def test_a_replay_without_redis_answers_503_and_leaves_the_dead_letter_dead(
    client, owner_token, billing, order_type, settings
):
    dead = bury(billing, order_type, "1-0")
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    response = client.post(url(billing, dead.pk, "replay"), **bearer(owner_token))
    assert_problem(response, 503)
    assert response["Retry-After"] == "1"
    dead.refresh_from_db()
    assert (dead.status, dead.replayed_at) == (DeadLetter.Status.DEAD, None)


def test_it_discards_a_dead_letter(client, owner_token, billing, order_type):
    doomed = bury(billing, order_type, "1-0")
    kept = bury(billing, order_type, "2-0")
    response = client.delete(url(billing, doomed.pk), **bearer(owner_token))
    assert response.status_code == 204
    assert response.content == b""
    assert list(DeadLetter.objects.all()) == [kept]
    assert_problem(client.delete(url(billing, doomed.pk), **bearer(owner_token)), 404)


def test_it_shows_a_body_that_is_not_json_as_text(client, owner_token, billing, order_type):
    dead = bury(billing, order_type, "1-0")
    DeadLetter.objects.filter(pk=dead.pk).update(body="not json")
    assert get(client, url(billing, dead.pk), owner_token).json()["event"] == "not json"
