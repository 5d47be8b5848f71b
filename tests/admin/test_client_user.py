"""A client's user, on its admin page: whom a browser session acts as (README, "Browsers")."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from events.models import Client

pytestmark = pytest.mark.django_db


def change_url(client: Client) -> str:
    return f"/admin/events/client/{client.pk}/change/"


def test_a_client_s_page_links_it_to_a_user(admin_client):
    alice = User.objects.create_user("alice")
    shop = Client.objects.create(name="shop")
    page = admin_client.get(change_url(shop))
    assert page.status_code == 200
    assert 'name="user"' in page.content.decode()
    found = admin_client.get(
        "/admin/autocomplete/",
        {"app_label": "events", "model_name": "client", "field_name": "user", "term": "ali"},
    )
    assert [r["text"] for r in found.json()["results"]] == ["alice"]
    form = {
        "name": "shop",
        "description": "",
        "user": str(alice.pk),
        "grants-TOTAL_FORMS": "0",
        "grants-INITIAL_FORMS": "0",
        "tokens-TOTAL_FORMS": "0",
        "tokens-INITIAL_FORMS": "0",
    }
    saved = admin_client.post(change_url(shop), form)
    assert saved.status_code == 302, saved.content.decode()[:2000]
    shop.refresh_from_db()
    assert shop.user == alice
    listed = admin_client.get("/admin/events/client/").content.decode()
    assert "alice" in listed


def test_a_user_acts_as_one_client_at_most(admin_client):
    alice = User.objects.create_user("alice")
    Client.objects.create(name="shop", user=alice)
    other = Client.objects.create(name="billing")
    form = {
        "name": "billing",
        "description": "",
        "user": str(alice.pk),
        "grants-TOTAL_FORMS": "0",
        "grants-INITIAL_FORMS": "0",
        "tokens-TOTAL_FORMS": "0",
        "tokens-INITIAL_FORMS": "0",
    }
    refused = admin_client.post(change_url(other), form)
    assert refused.status_code == 200  # the form again, with the error
    assert "already exists" in refused.content.decode()
    other.refresh_from_db()
    assert other.user is None
