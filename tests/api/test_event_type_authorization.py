"""An event type's authorization section is enforced over a real server, in addition to the
grants: its `admins` change and delete it, its `readers` read it and consume it through
subscriptions, its `writers` publish; everyone else gets 403 and changes nothing.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from django.contrib.auth.models import Group

from events.models import EventType
from events.store.connections import redis_client
from tests.authorization import attr, clients, linked, page, token_of
from tests.helpers import business_event, event_type_body, log_key
from tests.readers import ReaderClient

NAME = "payment.done"
EVENTS = f"/api/event-types/{NAME}/events"


SECTION = {
    "admins": [attr("service", "payments-admin")],
    "readers": [attr("service", "audit"), attr("team", "auditors")],
    "writers": [attr("client", "feeder"), attr("user", "alice")],
}


@pytest.fixture
def api(live_server):
    yield from clients(live_server)


@pytest.fixture
def payment(api) -> httpx.Client:
    """payment.done, owned by the payments application, with SECTION; the admin client."""
    ops = api("ops")
    body = event_type_body(NAME, owning_application="payments", authorization=SECTION)
    response = ops.post("/api/event-types", json=body)
    assert response.status_code == 201, response.text
    return ops


def stored() -> int:
    return redis_client().xlen(log_key(NAME, 0))


def publish(http: httpx.Client, number: str = "P-1") -> httpx.Response:
    return http.post(EVENTS, json=[business_event(number)])


def subscribe(http: httpx.Client) -> httpx.Response:
    body = {"owning_application": "audit", "event_types": [NAME], "read_from": "begin"}
    return http.post("/api/subscriptions", json=body)


def changed(**fields: Any) -> dict[str, Any]:
    body = {**event_type_body(NAME, owning_application="payments"), "authorization": SECTION}
    return {**body, **fields}


def test_writers_publish_and_no_one_else_does(api, payment):
    assert publish(api("feeder")).status_code == 200
    for name in ("audit", "payments-admin", "stranger"):
        refused = publish(api(name))
        assert refused.status_code == 403, name
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert "does not name it among its writers" in refused.json()["detail"]
    assert stored() == 1


def test_readers_read_and_subscribe_and_no_one_else_does(api, payment, live_server):
    assert publish(payment).status_code == 200
    audit = api("audit")
    assert audit.get(f"/api/event-types/{NAME}/partitions").status_code == 200
    assert audit.get(f"/api/event-types/{NAME}/partitions/0").status_code == 200
    token = token_of(audit)
    reader = ReaderClient(live_server.url, EVENTS, token, sse=False, read_from="begin")
    try:
        assert reader.status == 200, reader.problem
        assert [e["order_number"] for e in reader.wait_events(1)] == ["P-1"]
    finally:
        reader.close()
    for name in ("feeder", "payments-admin", "stranger"):
        other = api(name)
        assert other.get(f"/api/event-types/{NAME}/partitions").status_code == 403, name
        assert subscribe(other).status_code == 403, name
        token = token_of(other)
        refused = ReaderClient(live_server.url, EVENTS, token, sse=False)
        refused.close()
        assert refused.status == 403, name
    assert payment.get("/api/subscriptions").json()["items"] == []
    assert subscribe(audit).status_code == 201


def test_admins_change_and_delete_and_no_one_else_does(api, payment):
    widened = {**SECTION, "readers": [attr("*", "*")]}
    for name in ("audit", "feeder", "stranger"):
        other = api(name)
        put = other.put(f"/api/event-types/{NAME}", json=changed(authorization=widened))
        assert put.status_code == 403, name
        assert other.delete(f"/api/event-types/{NAME}").status_code == 403, name
    assert EventType.objects.get(name=NAME).authorization == SECTION
    admin = api("payments-admin")
    response = admin.put(f"/api/event-types/{NAME}", json=changed(authorization=widened))
    assert response.status_code == 200, response.text
    assert response.json()["authorization"] == widened
    assert admin.delete(f"/api/event-types/{NAME}").status_code == 200
    assert not EventType.objects.filter(name=NAME).exists()


def test_an_admin_of_the_type_may_not_hand_it_to_another_application(api, payment):
    admin = api("payments-admin")
    response = admin.put(f"/api/event-types/{NAME}", json=changed(owning_application="x"))
    assert response.status_code == 403
    assert EventType.objects.get(name=NAME).owning_application == "payments"


def test_admins_may_remove_themselves_as_on_nakadi(api, payment):
    """Nakadi checks a PUT against the stored section, not the new one."""
    admin = api("payments-admin")
    others = {**SECTION, "admins": [attr("service", "someone-else")]}
    removed = admin.put(f"/api/event-types/{NAME}", json=changed(authorization=others))
    assert removed.status_code == 200, removed.text
    again = admin.put(f"/api/event-types/{NAME}", json=changed(authorization=SECTION))
    assert again.status_code == 403
    assert EventType.objects.get(name=NAME).authorization == others


def test_the_wildcard_lets_every_client_read(api, payment):
    stranger = api("stranger")
    assert stranger.get(f"/api/event-types/{NAME}/partitions").status_code == 403
    everyone = {**SECTION, "readers": [attr("*", "*")]}
    response = payment.put(f"/api/event-types/{NAME}", json=changed(authorization=everyone))
    assert response.status_code == 200, response.text
    assert stranger.get(f"/api/event-types/{NAME}/partitions").status_code == 200
    assert publish(stranger).status_code == 403  # readers only


def test_unknown_data_types_are_kept_and_name_no_one(api, payment):
    odd = {**SECTION, "writers": [attr("realm", "stranger"), attr("uid", "stranger")]}
    response = payment.put(f"/api/event-types/{NAME}", json=changed(authorization=odd))
    assert response.json()["authorization"] == odd
    assert publish(api("stranger")).status_code == 403
    assert stored() == 0


def test_a_withdrawn_place_is_refused_on_the_very_next_publish(api, payment):
    feeder = api("feeder")
    assert publish(feeder).status_code == 200  # the type's copy is now cached
    without = {**SECTION, "writers": [attr("service", "someone-else")]}
    response = payment.put(f"/api/event-types/{NAME}", json=changed(authorization=without))
    assert response.status_code == 200, response.text
    assert publish(feeder, "P-2").status_code == 403
    assert stored() == 1


def test_grants_keep_working_beside_a_section(api, payment):
    granted = api("granted", publish=["payment.*"], read=["payment.*"])
    assert publish(granted).status_code == 200
    assert granted.get(f"/api/event-types/{NAME}/partitions").status_code == 200
    # the publish grant alone makes no one an admin of another application's type
    assert granted.delete(f"/api/event-types/{NAME}").status_code == 403
    assert EventType.objects.filter(name=NAME).exists()


# Signed-in users: `user` is a user's name, `team` one of its groups (Django's).


def test_a_user_is_named_by_its_name_and_a_team_by_its_groups(live_server, payment):
    alice = linked("alice", "alice-desk")  # a writer as a user
    carol = linked("carol", "carol-desk", "auditors")  # a reader through her group
    dave = linked("dave", "dave-desk", "others")
    with page(live_server, alice) as as_alice, page(live_server, carol) as as_carol:
        assert publish(as_alice).status_code == 200
        assert as_alice.get(f"/api/event-types/{NAME}/partitions").status_code == 403
        assert as_carol.get(f"/api/event-types/{NAME}/partitions").status_code == 200
        assert publish(as_carol).status_code == 403
    with page(live_server, dave) as as_dave:
        assert as_dave.get(f"/api/event-types/{NAME}/partitions").status_code == 403
        dave.groups.add(Group.objects.get(name="auditors"))  # cached principals go stale
        assert as_dave.get(f"/api/event-types/{NAME}/partitions").status_code == 200
    assert stored() == 1


def test_a_stream_token_minted_by_a_team_member_reads_the_type(live_server, payment):
    carol = linked("carol", "carol-desk", "auditors")
    assert publish(payment).status_code == 200
    with page(live_server, carol) as as_carol:
        minted = as_carol.post("/api/stream-tokens", json={"event_types": [NAME]})
        assert minted.status_code == 201, minted.text
        glob = as_carol.post("/api/stream-tokens", json={"event_types": ["payment.*"]})
        assert glob.status_code == 403  # a glob needs a grant: a section names one type
    reader = ReaderClient(
        live_server.url, EVENTS, sse=False, read_from="begin", access_token=minted.json()["token"]
    )
    try:
        assert reader.status == 200, reader.problem
        assert len(reader.wait_events(1)) == 1
    finally:
        reader.close()


def test_a_glob_reads_the_types_whose_readers_name_the_client(api, payment, live_server):
    other = event_type_body("payment.refunded", owning_application="payments")
    assert payment.post("/api/event-types", json=other).status_code == 201
    assert publish(payment).status_code == 200
    audit = api("audit")
    reader = ReaderClient(
        live_server.url, "/api/events", token_of(audit), event_type="payment.*", read_from="begin"
    )
    try:
        assert reader.status == 200, reader.problem
        reader.wait_events(1)
        position = reader.last_id()  # names every type the stream reads
        assert f"{NAME}@" in position
        assert "payment.refunded@" not in position
    finally:
        reader.close()
    refused = ReaderClient(live_server.url, "/api/events", token_of(api("x")), event_type="p*")
    refused.close()
    assert refused.status == 404  # no type that this client may read matches


def test_a_section_is_not_dropped_by_a_put_without_one_as_on_nakadi(api, payment):
    admin = api("payments-admin")
    response = admin.put(f"/api/event-types/{NAME}", json=changed(authorization=None))
    assert response.status_code == 422
    assert "authorization object to `null` is not possible" in response.json()["detail"]
    assert EventType.objects.get(name=NAME).authorization == SECTION
    dropped = payment.put(f"/api/event-types/{NAME}", json=changed(authorization=None))
    assert dropped.status_code == 200  # an admin client may, as it may drop a selector
