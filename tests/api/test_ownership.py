"""Only an event type's owner (or an admin) may change or delete it."""

from __future__ import annotations

import orjson
import pytest

from events.catalog.clients import create_client
from events.models import EventType
from tests.conftest import bearer
from tests.helpers import event_type_body

pytestmark = pytest.mark.django_db


def send(client, method, path, token, body=None):
    data = orjson.dumps(body) if body is not None else b""
    return client.generic(method, path, data, content_type="application/json", **bearer(token))


@pytest.fixture
def rival():
    """Another team with the same publish grant as the shop."""
    return create_client("rival", publish=["order.*"])[1]


def test_a_co_publisher_cannot_take_over_change_or_delete_a_type(client, producer_token, rival):
    assert (
        send(client, "POST", "/api/event-types", producer_token, event_type_body()).status_code
        == 201
    )
    taken = event_type_body(owning_application="rival")
    assert send(client, "PUT", "/api/event-types/order.created", rival, taken).status_code == 403
    trimmed = event_type_body(options={"retention_time": 60_000})
    assert send(client, "PUT", "/api/event-types/order.created", rival, trimmed).status_code == 403
    assert send(client, "DELETE", "/api/event-types/order.created", rival).status_code == 403
    assert EventType.objects.get().owning_application == "shop"


def test_a_client_defines_types_only_in_its_own_name(client, rival):
    response = send(client, "POST", "/api/event-types", rival, event_type_body())  # owner "shop"
    assert response.status_code == 403
    assert "owning_application must be 'rival'" in response.json()["detail"]


def test_the_owner_may_not_hand_a_type_to_another_owner_but_an_admin_may(
    client, producer_token, admin_token
):
    send(client, "POST", "/api/event-types", producer_token, event_type_body())
    handed = event_type_body(owning_application="rival")
    assert (
        send(client, "PUT", "/api/event-types/order.created", producer_token, handed).status_code
        == 403
    )
    assert (
        send(client, "PUT", "/api/event-types/order.created", admin_token, handed).status_code
        == 200
    )
    assert EventType.objects.get().owning_application == "rival"
