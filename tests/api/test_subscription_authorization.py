"""A subscription's authorization section is enforced over a real server, in addition to the
grants: its `readers` consume it (stream, commit, cursors, stats), its `admins` change,
delete and reset it; an event type's `readers` consume subscriptions on it; everyone else
gets 403 and changes nothing.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from events.models import Subscription
from tests.authorization import attr, clients, linked, page, token_of
from tests.helpers import business_event, event_type_body
from tests.streams import Stream

NAME = "payment.done"
SECTION = {
    "admins": [attr("service", "billing-admin")],
    "readers": [attr("service", "billing"), attr("user", "alice")],
}
BEGIN = {"items": [{"event_type": NAME, "partition": "0", "offset": "BEGIN"}]}


@pytest.fixture
def api(live_server):
    yield from clients(live_server)


@pytest.fixture
def ops(api) -> httpx.Client:
    """The admin client, after creating payment.done and publishing one event to it."""
    admin = api("ops")
    body = event_type_body(NAME, owning_application="payments")
    assert admin.post("/api/event-types", json=body).status_code == 201
    published = admin.post(f"/api/event-types/{NAME}/events", json=[business_event("P-1")])
    assert published.status_code == 200, published.text
    return admin


def create(ops: httpx.Client, authorization: dict[str, Any] | None = SECTION) -> str:
    body = {
        "owning_application": "billing",
        "event_types": [NAME],
        "read_from": "begin",
        "authorization": authorization,
    }
    response = ops.post("/api/subscriptions", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def subscription(ops) -> str:
    return create(ops)


def stream(live_server, streams, http: httpx.Client, subscription: str) -> Stream:
    opened = Stream(live_server.url, token_of(http), subscription, batch_flush_timeout=1)
    streams.append(opened)
    return opened


def put(http: httpx.Client, subscription: str, authorization: dict[str, Any]) -> httpx.Response:
    body = {
        "owning_application": "billing",
        "event_types": [NAME],
        "read_from": "begin",
        "authorization": authorization,
    }
    return http.put(f"/api/subscriptions/{subscription}", json=body)


def consumes(live_server, streams, http: httpx.Client, subscription: str) -> None:
    """`http` streams the subscription, commits what it got, reads its cursors and stats."""
    opened = stream(live_server, streams, http, subscription)
    assert opened.status == 200, opened.problem
    opened.wait(lambda s: len(s.events) == 1)
    assert opened.commit(opened.last_cursor()).status_code == 204
    assert http.get(f"/api/subscriptions/{subscription}/cursors").status_code == 200
    assert http.get(f"/api/subscriptions/{subscription}/stats").status_code == 200
    opened.close()


def refused_to_consume(live_server, streams, http: httpx.Client, subscription: str) -> None:
    opened = stream(live_server, streams, http, subscription)
    assert opened.status == 403, opened.problem
    assert opened.problem is not None
    assert opened.problem["status"] == 403
    commit = http.post(
        f"/api/subscriptions/{subscription}/cursors",
        json=BEGIN,
        headers={"X-Nakadi-StreamId": "s"},
    )
    assert commit.status_code == 403
    assert http.get(f"/api/subscriptions/{subscription}/cursors").status_code == 403
    assert http.get(f"/api/subscriptions/{subscription}/stats").status_code == 403


def refused_to_administer(http: httpx.Client, subscription: str) -> None:
    everyone = {**SECTION, "readers": [attr("*", "*")]}
    assert put(http, subscription, everyone).status_code == 403
    assert http.patch(f"/api/subscriptions/{subscription}/cursors", json=BEGIN).status_code == 403
    assert http.delete(f"/api/subscriptions/{subscription}").status_code == 403
    assert Subscription.objects.get(pk=subscription).authorization == SECTION


def test_readers_consume_and_do_nothing_else(api, live_server, streams, subscription):
    billing = api("billing")
    consumes(live_server, streams, billing, subscription)
    minted = billing.post("/api/stream-tokens", json={"subscription": subscription})
    assert minted.status_code == 201, minted.text
    refused_to_administer(billing, subscription)


def test_admins_administer_and_do_not_consume(api, live_server, streams, subscription):
    admin = api("billing-admin")
    refused_to_consume(live_server, streams, admin, subscription)
    everyone = {**SECTION, "readers": [attr("*", "*")]}
    assert put(admin, subscription, everyone).status_code == 204
    assert Subscription.objects.get(pk=subscription).authorization == everyone
    assert admin.patch(f"/api/subscriptions/{subscription}/cursors", json=BEGIN).status_code == 204
    assert admin.delete(f"/api/subscriptions/{subscription}").status_code == 204
    assert not Subscription.objects.filter(pk=subscription).exists()


def test_a_client_it_does_not_name_may_do_nothing(api, live_server, streams, subscription):
    stranger = api("stranger")
    refused_to_consume(live_server, streams, stranger, subscription)
    refused_to_administer(stranger, subscription)


def test_the_wildcard_lets_every_client_consume(api, ops, live_server, streams):
    subscription = create(ops, {**SECTION, "readers": [attr("*", "*")]})
    consumes(live_server, streams, api("stranger"), subscription)


def test_the_consume_grant_keeps_working_beside_a_section(api, live_server, streams, subscription):
    granted = api("granted", consume=["payment.*"])
    consumes(live_server, streams, granted, subscription)
    assert granted.delete(f"/api/subscriptions/{subscription}").status_code == 204


def section(ops: httpx.Client, **roles: list[dict[str, str]]) -> httpx.Response:
    """PUT payment.done with an authorization section of `roles` (ops in the others)."""
    authorization = {role: [attr("service", "ops")] for role in ("admins", "readers", "writers")}
    body = event_type_body(NAME, owning_application="payments")
    body["authorization"] = authorization | roles
    return ops.put(f"/api/event-types/{NAME}", json=body)


def test_an_event_type_s_readers_consume_its_subscriptions(api, ops, live_server, streams):
    """As a consume grant on the type would; the commit reads the type's section from the
    process's copy, which follows a change at once."""
    assert section(ops, readers=[attr("service", "auditor")]).status_code == 200
    subscription = create(ops, None)
    auditor = api("auditor")
    consumes(live_server, streams, auditor, subscription)
    opened = stream(live_server, streams, auditor, subscription)
    opened.wait(lambda s: len(s.batches) >= 1)  # a keep-alive: the stream is open
    assert section(ops, readers=[attr("service", "someone-else")]).status_code == 200
    assert opened.commit({**BEGIN["items"][0], "offset": "0-1"}).status_code == 403
    assert auditor.get(f"/api/subscriptions/{subscription}/stats").status_code == 403


def test_a_user_named_as_a_reader_consumes_with_its_session(api, live_server, subscription):
    alice = linked("alice", "alice-desk")
    bob = linked("bob", "bob-desk")
    with page(live_server, alice) as as_alice, page(live_server, bob) as as_bob:
        assert as_alice.get(f"/api/subscriptions/{subscription}/stats").status_code == 200
        assert as_bob.get(f"/api/subscriptions/{subscription}/stats").status_code == 403
        assert as_alice.delete(f"/api/subscriptions/{subscription}").status_code == 403
    assert Subscription.objects.filter(pk=subscription).exists()
