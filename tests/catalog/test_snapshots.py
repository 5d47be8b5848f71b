"""The hot path's cached copies of tokens and event types follow every committed change."""

from __future__ import annotations

import orjson
import pytest
from django.contrib.auth.models import User, update_last_login

from events.catalog.clients import create_client
from events.models import ApiToken, Grant
from events.store.connections import redis_client
from events.store.keys import AUTH_EPOCH_KEY
from tests.conftest import bearer
from tests.helpers import ORDER_SCHEMA, business_event, event_type_body

pytestmark = pytest.mark.django_db(transaction=True)  # real commits: the bumps run on commit


def publish(client, token, events):
    return client.post(
        "/api/event-types/order.created/events",
        orjson.dumps(events),
        content_type="application/json",
        **bearer(token),
    )


@pytest.fixture
def shop(client):
    token = create_client("shop", publish=["order.*"], read=["order.*"])[1]
    body = event_type_body(compatibility_mode="compatible")
    response = client.post(
        "/api/event-types", orjson.dumps(body), content_type="application/json", **bearer(token)
    )
    assert response.status_code == 201
    assert publish(client, token, [business_event("A")]).status_code == 200  # now cached
    return token


def test_a_schema_change_applies_to_the_very_next_publish(client, shop):
    assert publish(client, shop, [business_event("B", note="n")]).status_code == 422
    schema = {**ORDER_SCHEMA, "properties": {**ORDER_SCHEMA["properties"], "note": {}}}
    body = event_type_body(json_schema=schema, compatibility_mode="compatible")
    response = client.put(
        "/api/event-types/order.created",
        orjson.dumps(body),
        content_type="application/json",
        **bearer(shop),
    )
    assert response.status_code == 200
    assert publish(client, shop, [business_event("B", note="n")]).status_code == 200


def test_a_revoked_token_is_refused_at_once(client, shop):
    token = ApiToken.objects.get(client__name="shop")
    token.revoked = True
    token.save()  # as the admin does
    assert publish(client, shop, [business_event("B")]).status_code == 401


def test_a_withdrawn_grant_is_refused_at_once(client, shop):
    Grant.objects.get(client__name="shop", action="publish").delete()
    assert publish(client, shop, [business_event("B")]).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_a_sign_in_keeps_every_cached_principal():
    """Each sign-in saves the user's last_login: that changes no one's rights, and must not
    empty the principal caches of every process (the publishing hot path reads them).
    """

    user = User.objects.create_user("alice", password="a long password")
    before = redis_client().get(AUTH_EPOCH_KEY)
    update_last_login(None, user)
    assert redis_client().get(AUTH_EPOCH_KEY) == before
    user.is_superuser = True
    user.save()
    assert redis_client().get(AUTH_EPOCH_KEY) != before
