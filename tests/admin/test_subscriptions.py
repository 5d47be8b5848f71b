"""The subscription admin: created by the API's rules (cursors included), identity fixed
afterwards, deleted as the API deletes.
"""

from __future__ import annotations

import pytest

from events.core.offsets import BEGIN
from events.models import CommittedCursor, Subscription
from events.store import keys
from events.store.connections import redis_client
from events.store.keys import lease_key
from streamsite.processes import free_port

pytestmark = pytest.mark.django_db

ADD = "/admin/events/subscription/add/"


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
        "unprocessable_event_policy": "dead_letter",
        "ack_timeout": "30",
        "topics": "[]",
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
    CommittedCursor.objects.filter(subscription=subscription, partition=1).update(
        offset="1795252632832-4"
    )
    listing = admin_client.get("/admin/events/subscription/")
    assert "billing" in listing.content.decode()
    page = admin_client.get(f"/admin/events/subscription/{subscription.pk}/change/")
    text = page.content.decode()
    assert page.status_code == 200
    assert "1795252632832-4" in text
    assert 'name="owning_application"' not in text  # fixed once created


def cursors_of(subscription: Subscription) -> dict[int, str]:
    return dict(
        CommittedCursor.objects.filter(subscription=subscription).values_list("partition", "offset")
    )


def test_a_subscription_created_in_the_admin_reads_from_the_end_as_of_its_creation(
    admin_client, order_type
):
    newest = redis_client().xadd(keys.log_key(order_type.store_id, 0), {"n": "1"}).decode()
    response = admin_client.post(ADD, form(order_type, read_from="end"))
    assert response.status_code == 302, response.content.decode()[-2000:]
    redis_client().xadd(keys.log_key(order_type.store_id, 0), {"n": "2"})
    assert cursors_of(Subscription.objects.get()) == {0: newest, 1: BEGIN}


def test_a_subscription_created_in_the_admin_from_the_beginning_gets_begin_cursors(
    admin_client, order_type
):
    admin_client.post(ADD, form(order_type, read_from="begin"))
    assert cursors_of(Subscription.objects.get()) == {0: BEGIN, 1: BEGIN}


def test_a_subscription_created_while_redis_is_down_is_saved_with_a_warning(
    admin_client, order_type, settings
):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = admin_client.post(ADD, form(order_type, read_from="end"), follow=True)
    assert response.status_code == 200
    notes = [str(m) for m in response.context["messages"]]
    assert any("Redis is not answering" in note for note in notes), notes
    assert cursors_of(Subscription.objects.get()) == {}  # set when it is first read


def test_the_add_page_has_no_cursors_section(admin_client, order_type):
    page = admin_client.get(ADD)
    assert page.status_code == 200
    assert "cursors-TOTAL_FORMS" not in page.content.decode()


def test_deleting_a_subscription_in_the_admin_drops_its_redis_state(admin_client, order_type):
    admin_client.post(ADD, form(order_type))
    subscription = Subscription.objects.get()
    sub = str(subscription.pk)
    client = redis_client()
    log = keys.log_key(order_type.store_id, 0)
    client.xgroup_create(log, sub, id="0", mkstream=True)
    client.hset(lease_key(order_type.store_id, 0, sub), mapping={"session": "s-1", "token": 1})
    response = admin_client.post(
        f"/admin/events/subscription/{sub}/delete/", {"post": "yes"}, follow=True
    )
    assert response.status_code == 200
    assert not Subscription.objects.exists()
    assert not client.exists(lease_key(order_type.store_id, 0, sub))
    assert client.xinfo_groups(log) == []


def test_the_admin_sets_and_changes_the_unprocessable_event_policy(admin_client, order_type):
    response = admin_client.post(ADD, form(order_type, unprocessable_event_policy="skip"))
    assert response.status_code == 302, response.content.decode()[-2000:]
    subscription = Subscription.objects.get()
    assert subscription.unprocessable_event_policy == "skip"
    change = f"/admin/events/subscription/{subscription.pk}/change/"
    assert 'name="unprocessable_event_policy"' in admin_client.get(change).content.decode()
    delivery = {
        "mode": "ordered",
        "commit_timeout": "60",
        "max_deliveries": "3",
        "unprocessable_event_policy": "dead_letter",
        "ack_timeout": "30",
        "topics": "[]",
        "cursors-TOTAL_FORMS": "0",
        "cursors-INITIAL_FORMS": "0",
    }
    response = admin_client.post(change, delivery)
    assert response.status_code == 302, response.content.decode()[-2000:]
    subscription.refresh_from_db()
    assert (subscription.max_deliveries, subscription.unprocessable_event_policy) == (
        3,
        "dead_letter",
    )


def test_settings_that_annotations_set_are_read_only_in_the_admin(admin_client, order_type):
    from events.catalog import subscriptions

    annotations = {
        "nakadi.zalando.org/subscription-max-event-send-count": "3",
        "nakadi.zalando.org/subscription-unprocessable-event-policy": "SKIP_EVENT",
    }
    body = {
        "owning_application": "billing",
        "event_types": ["order.created"],
        "annotations": annotations,
    }
    subscription = subscriptions.create_or_get(subscriptions.parse(body))[0]
    page = admin_client.get(f"/admin/events/subscription/{subscription.pk}/change/")
    text = page.content.decode()
    assert page.status_code == 200
    assert 'name="max_deliveries"' not in text
    assert 'name="unprocessable_event_policy"' not in text
    assert 'name="commit_timeout"' in text  # what no annotation sets stays editable
    assert "subscription-unprocessable-event-policy" in text
    assert "skip: acknowledge it and count it, store nothing" in text


SKIP_NEEDS_TWO = "Skipping (unprocessable_event_policy &quot;skip&quot;"


def test_the_admin_refuses_to_skip_after_a_single_delivery(admin_client, order_type):
    refused = admin_client.post(
        ADD, form(order_type, max_deliveries="1", unprocessable_event_policy="skip")
    )
    assert refused.status_code == 200
    assert SKIP_NEEDS_TWO in refused.content.decode()
    assert not Subscription.objects.exists()
    admin_client.post(ADD, form(order_type, max_deliveries="3", unprocessable_event_policy="skip"))
    subscription = Subscription.objects.get()
    change = f"/admin/events/subscription/{subscription.pk}/change/"
    delivery = {
        "mode": "ordered",
        "commit_timeout": "60",
        "max_deliveries": "1",
        "unprocessable_event_policy": "skip",
        "ack_timeout": "30",
        "topics": "[]",
        "cursors-TOTAL_FORMS": "0",
        "cursors-INITIAL_FORMS": "0",
    }
    refused = admin_client.post(change, delivery)
    assert refused.status_code == 200
    assert SKIP_NEEDS_TWO in refused.content.decode()
    subscription.refresh_from_db()
    assert (subscription.max_deliveries, subscription.unprocessable_event_policy) == (3, "skip")


def test_the_admin_checks_an_edited_setting_with_the_one_an_annotation_set(
    admin_client, order_type
):
    from events.catalog import subscriptions

    body = {
        "owning_application": "billing",
        "event_types": ["order.created"],
        "annotations": {"nakadi.zalando.org/subscription-unprocessable-event-policy": "SKIP_EVENT"},
    }
    subscription = subscriptions.create_or_get(subscriptions.parse(body))[0]
    change = f"/admin/events/subscription/{subscription.pk}/change/"
    delivery = {
        "mode": "ordered",
        "commit_timeout": "60",
        "max_deliveries": "1",  # the policy is read-only here: skip, as annotated
        "ack_timeout": "30",
        "topics": "[]",
        "cursors-TOTAL_FORMS": "0",
        "cursors-INITIAL_FORMS": "0",
    }
    refused = admin_client.post(change, delivery)
    assert refused.status_code == 200
    assert SKIP_NEEDS_TWO in refused.content.decode()
    subscription.refresh_from_db()
    assert subscription.max_deliveries == 10
