"""The subscription admin: created by the API's rules, identity fixed afterwards."""

from __future__ import annotations

import pytest

from events.models import Cursor, EventType, Subscription

pytestmark = pytest.mark.django_db

ADD = "/admin/events/subscription/add/"


@pytest.fixture
def order_type():
    return EventType.objects.create(
        name="order.created",
        owning_application="shop",
        category="business",
        schema='{"type": "object"}',
        retention_time_ms=3_600_000,
        partition_count=2,
    )


def form(order_type, **extra):
    return {
        "owning_application": "billing",
        "event_types": [order_type.pk],
        "consumer_group": "default",
        "read_from": "end",
        "initial_cursors": "null",
        "mode": "ordered",
        "commit_timeout": "60",
        "max_deliveries": "10",
        "cursors-TOTAL_FORMS": "0",
        "cursors-INITIAL_FORMS": "0",
        **extra,
    }


def test_an_admin_creates_a_subscription_with_the_apis_identity(admin_client, order_type):
    response = admin_client.post(ADD, form(order_type))
    assert response.status_code == 302, response.content.decode()[-2000:]
    created = Subscription.objects.get()
    assert len(created.identity) == 64
    again = admin_client.post(ADD, form(order_type))
    assert again.status_code == 200
    assert "exists" in again.content.decode()
    assert Subscription.objects.count() == 1


def test_the_admin_refuses_what_the_api_refuses(admin_client, order_type):
    response = admin_client.post(ADD, form(order_type, read_from="cursors"))
    assert response.status_code == 200
    assert "cover every partition" in response.content.decode()
    assert not Subscription.objects.exists()


def test_the_pages_render_with_cursors_read_only(admin_client, order_type):
    admin_client.post(ADD, form(order_type))
    subscription = Subscription.objects.get()
    Cursor.objects.create(
        subscription=subscription, event_type=order_type, partition=1, offset="1795252632832-4"
    )
    listing = admin_client.get("/admin/events/subscription/")
    assert "billing" in listing.content.decode()
    page = admin_client.get(f"/admin/events/subscription/{subscription.pk}/change/")
    text = page.content.decode()
    assert page.status_code == 200
    assert "1795252632832-4" in text
    assert 'name="owning_application"' not in text  # fixed once created
