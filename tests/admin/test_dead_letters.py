"""Dead letters in the admin: listed, filtered and searched; read-only; replayed to their
subscription (against the test session's Redis) or discarded.
"""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from events.models import DeadLetter, EventType, Subscription
from events.store import keys
from events.store.connections import redis_client
from streamsite.processes import free_port
from tests.helpers import business_event, event_type_row, subscribe

pytestmark = pytest.mark.django_db

LIST = "/admin/events/deadletter/"


def bury(
    subscription: Subscription,
    event_type: EventType,
    offset: str,
    *,
    partition: int = 0,
    order_number: str = "A-1",
    **fields: object,
) -> DeadLetter:
    """A dead letter of `subscription`, as the job stores it."""
    event = business_event(order_number)
    return DeadLetter.objects.create(
        subscription=subscription,
        event_type=event_type,
        partition=partition,
        offset=offset,
        body=orjson.dumps(event).decode(),
        deliveries=fields.pop("deliveries", 11),
        reason=fields.pop("reason", "max_deliveries"),
        **fields,
    )


def listed(response) -> list[str]:
    """The offsets of the dead letters a change list page shows."""
    assert response.status_code == 200, response.content.decode()[-2000:]
    return [row.offset for row in response.context["cl"].result_list]


def choose(admin_client, action: str, *chosen: DeadLetter, **extra: str):
    data = {"action": action, "_selected_action": [str(d.pk) for d in chosen], **extra}
    return admin_client.post(LIST, data, follow=True)


def shown_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def log_entries(event_type: EventType, partition: int):
    return redis_client().xrange(keys.log_key(event_type.store_id, partition))


@pytest.fixture
def billing(order_type: EventType) -> Subscription:
    return subscribe("order.created")


def test_the_list_shows_each_dead_letter_with_its_delivery_record(
    admin_client, billing, order_type
):
    bury(billing, order_type, "1795252632832-0", partition=1, deliveries=11, reason="timeout")
    response = admin_client.get(LIST)
    text = response.content.decode()
    assert listed(response) == ["1795252632832-0"]
    for shown in ("billing/default", "order.created", "1795252632832-0", "11", "timeout", "dead"):
        assert shown in text
    assert "Replay to its subscription" in text
    assert "Discard the selected dead letters" in text
    assert "Delete selected" not in text


def test_the_list_filters_by_subscription_event_type_status_reason_and_date(
    admin_client, billing, order_type
):
    paid = event_type_row("order.paid", schema="{}")
    other = subscribe("order.created", "order.paid", group="audit")
    old = timezone.now() - timedelta(days=40)
    bury(billing, order_type, "1-0")
    bury(billing, order_type, "2-0", status=DeadLetter.Status.REPLAYED, created_at=old)
    bury(other, paid, "3-0", reason="schema")
    assert listed(admin_client.get(LIST)) == ["3-0", "1-0", "2-0"]
    by_subscription = admin_client.get(LIST, {"subscription__id__exact": str(billing.pk)})
    assert listed(by_subscription) == ["1-0", "2-0"]
    assert listed(admin_client.get(LIST, {"event_type__id__exact": paid.pk})) == ["3-0"]
    assert listed(admin_client.get(LIST, {"status__exact": "replayed"})) == ["2-0"]
    assert listed(admin_client.get(LIST, {"reason": "schema"})) == ["3-0"]
    since = str(timezone.now() - timedelta(days=7))
    assert listed(admin_client.get(LIST, {"created_at__gte": since})) == ["3-0", "1-0"]


def test_the_list_searches_offsets_and_event_bodies(admin_client, billing, order_type):
    bury(billing, order_type, "1795252632832-0", order_number="A-77")
    bury(billing, order_type, "1795252632999-5", order_number="B-12")
    assert listed(admin_client.get(LIST, {"q": "A-77"})) == ["1795252632832-0"]
    assert listed(admin_client.get(LIST, {"q": "2999-5"})) == ["1795252632999-5"]
    assert listed(admin_client.get(LIST, {"q": "nothing like it"})) == []


def test_the_change_page_shows_the_event_pretty_printed_and_nothing_to_edit(
    admin_client, billing, order_type
):
    dead = bury(billing, order_type, "1-0", order_number="A-77")
    page = admin_client.get(f"{LIST}{dead.pk}/change/")
    text = page.content.decode()
    assert page.status_code == 200
    assert '<pre id="dead-letter-event">{\n  &quot;metadata&quot;: {' in text
    assert "&quot;order_number&quot;: &quot;A-77&quot;" in text
    assert 'name="offset"' not in text
    assert 'name="_save"' not in text
    assert admin_client.get(f"{LIST}add/").status_code == 403
    posted = admin_client.post(f"{LIST}{dead.pk}/change/", {"reason": "edited"})
    assert posted.status_code == 403
    dead.refresh_from_db()
    assert dead.reason == "max_deliveries"


def test_replaying_appends_the_event_to_its_partition_for_its_subscription_only(
    admin_client, billing, order_type
):
    dead = bury(billing, order_type, "1-0", partition=1, order_number="A-77")
    response = choose(admin_client, "replay", dead)
    assert shown_messages(response) == ["1 dead letter was replayed."]
    dead.refresh_from_db()
    assert dead.status == DeadLetter.Status.REPLAYED
    assert dead.replayed_at is not None
    ((offset, fields),) = log_entries(order_type, 1)
    assert fields == {b"e": dead.body.encode(), b"r": str(billing.pk).encode()}
    assert log_entries(order_type, 0) == []
    entry = LogEntry.objects.get(object_id=str(dead.pk))
    assert offset.decode() in entry.change_message


def test_replaying_again_reports_what_was_replayed_already(admin_client, billing, order_type):
    first = bury(billing, order_type, "1-0")
    second = bury(billing, order_type, "2-0")
    choose(admin_client, "replay", first)
    response = choose(admin_client, "replay", first, second)
    assert shown_messages(response) == ["1 dead letter was replayed; 1 was replayed already."]
    again = choose(admin_client, "replay", first, second)
    assert shown_messages(again) == ["0 dead letters were replayed; 2 were replayed already."]
    assert len(log_entries(order_type, 0)) == 2


def test_a_replay_without_redis_says_so_and_leaves_the_dead_letter_dead(
    admin_client, billing, order_type, settings
):
    dead = bury(billing, order_type, "1-0")
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    response = choose(admin_client, "replay", dead)
    (message,) = shown_messages(response)
    assert message.startswith("Redis is not answering")
    assert "0 dead letters were replayed" in message
    dead.refresh_from_db()
    assert (dead.status, dead.replayed_at) == (DeadLetter.Status.DEAD, None)


def test_discarding_asks_for_confirmation_then_deletes(admin_client, billing, order_type):
    doomed = bury(billing, order_type, "1-0")
    kept = bury(billing, order_type, "2-0")
    asked = choose(admin_client, "delete_selected", doomed)
    assert "Are you sure" in asked.content.decode()
    assert DeadLetter.objects.count() == 2
    done = choose(admin_client, "delete_selected", doomed, post="yes")
    assert "Successfully deleted 1 dead letter" in " ".join(shown_messages(done))
    assert list(DeadLetter.objects.all()) == [kept]


def test_the_change_page_button_replays_the_dead_letter(admin_client, billing, order_type):
    dead = bury(billing, order_type, "1-0")
    change = f"{LIST}{dead.pk}/change/"
    assert 'id="replay-dead-letter"' in admin_client.get(change).content.decode()
    assert admin_client.get(f"{LIST}{dead.pk}/replay/").status_code == 405
    response = admin_client.post(f"{LIST}{dead.pk}/replay/")
    assert response.status_code == 302
    assert response["Location"] == change
    dead.refresh_from_db()
    assert dead.status == DeadLetter.Status.REPLAYED
    assert len(log_entries(order_type, 0)) == 1
    assert 'id="replay-dead-letter"' not in admin_client.get(change).content.decode()


def test_an_operator_who_may_only_view_dead_letters_cannot_replay_or_discard(
    client, billing, order_type
):
    dead = bury(billing, order_type, "1-0")
    viewer = User.objects.create_user("viewer", password="a long password", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_deadletter"))
    client.force_login(viewer)
    text = client.get(LIST).content.decode()
    assert "1-0" in text
    assert "Replay to its subscription" not in text
    assert "Discard" not in text
    assert 'id="replay-dead-letter"' not in client.get(f"{LIST}{dead.pk}/change/").content.decode()
    assert client.post(f"{LIST}{dead.pk}/replay/").status_code == 403
    dead.refresh_from_db()
    assert dead.status == DeadLetter.Status.DEAD


def test_a_subscription_page_links_to_its_dead_letters(admin_client, billing, order_type):
    bury(billing, order_type, "1-0")
    bury(billing, order_type, "2-0")
    bury(subscribe("order.created", group="audit"), order_type, "3-0")
    page = admin_client.get(f"/admin/events/subscription/{billing.pk}/change/")
    text = page.content.decode()
    assert "Dead letters (2)" in text
    link = f"{LIST}?subscription__id__exact={billing.pk}"
    assert f'href="{link}"' in text
    assert listed(admin_client.get(link)) == ["2-0", "1-0"]
