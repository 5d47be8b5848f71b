"""Resetting a subscription's cursors in the admin: the change list action and the change
page's button, each through a confirmation page, against the test session's Redis.
"""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry

from events.core.offsets import BEGIN
from events.models import CommittedCursor, EventType, Subscription
from events.store import keys
from events.store.connections import redis_client
from events.store.keys import lease_key, resetting_key, sessions_key
from streamsite.processes import free_port
from tests.helpers import subscribe

pytestmark = pytest.mark.django_db

LIST = "/admin/events/subscription/"
FAR_FUTURE_MS = 10**14


def append(event_type: EventType, partition: int, count: int) -> list[str]:
    log = keys.log_key(event_type.store_id, partition)
    return [redis_client().xadd(log, {"n": str(i)}).decode() for i in range(count)]


def cursors_of(subscription: Subscription) -> dict[int, str]:
    rows = CommittedCursor.objects.filter(subscription=subscription)
    return dict(rows.values_list("partition", "offset"))


def choose(admin_client, *chosen: Subscription):
    """The change list's action: answers with the confirmation page."""
    return admin_client.post(
        LIST, {"action": "reset_cursors", "_selected_action": [str(s.pk) for s in chosen]}
    )


def confirm(admin_client, *chosen: Subscription, **fields: str):
    """The confirmation page sent back; `fields` are named without the subscription prefix,
    and apply to each chosen subscription.
    """
    data: dict[str, object] = {
        "action": "reset_cursors",
        "_selected_action": [str(s.pk) for s in chosen],
        "apply": "Reset cursors",
    }
    for s in chosen:
        data.update({f"{s.pk}-{name}": value for name, value in fields.items()})
    return admin_client.post(LIST, data, follow=True)


def notes(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def hold(subscription: Subscription, event_type: EventType, partition: int, session: str) -> None:
    """A live session of the subscription that owns the partition."""
    sub = str(subscription.pk)
    redis_client().zadd(sessions_key(sub), {session: FAR_FUTURE_MS})
    redis_client().hset(
        lease_key(event_type.store_id, partition, sub), mapping={"session": session, "token": 1}
    )


def test_the_action_asks_where_to_before_resetting_anything(admin_client, order_type):
    newest = append(order_type, 0, 2)[-1]
    subscription = subscribe("order.created", read_from="end")
    page = choose(admin_client, subscription)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="reset-cursors-form"' in html
    assert f"<code>{newest}</code>" in html  # the newest offset of partition 0
    assert cursors_of(subscription) == {0: newest, 1: BEGIN}


def test_resetting_to_the_beginning_moves_the_cursors_and_closes_the_sessions(
    admin_client, order_type
):
    append(order_type, 0, 2)
    subscription = subscribe("order.created", read_from="end")
    hold(subscription, order_type, 0, "session-a")

    response = confirm(admin_client, subscription, target="begin")

    assert response.redirect_chain == [(LIST, 302)]
    assert cursors_of(subscription) == {0: BEGIN, 1: BEGIN}
    assert any("were reset" in note for note in notes(response)), notes(response)
    sub = str(subscription.pk)
    assert not redis_client().exists(sessions_key(sub))
    assert not redis_client().exists(lease_key(order_type.store_id, 0, sub))
    assert "Reset cursors: order.created/0 to BEGIN" in LogEntry.objects.get().change_message


def test_resetting_to_the_end_skips_everything_published_so_far(admin_client, order_type):
    subscription = subscribe("order.created", read_from="begin")
    newest = append(order_type, 1, 3)[-1]
    confirm(admin_client, subscription, target="end")
    assert cursors_of(subscription) == {0: BEGIN, 1: newest}


def test_typed_offsets_move_only_the_partitions_given(admin_client, order_type):
    first = append(order_type, 0, 2)[0]
    subscription = subscribe("order.created", read_from="end")
    CommittedCursor.objects.filter(subscription=subscription, partition=1).update(offset="1-0")
    confirm(admin_client, subscription, target="offsets", offset_0=first, offset_1="")
    assert cursors_of(subscription) == {0: first, 1: "1-0"}


@pytest.mark.parametrize(
    ("offset", "error"),
    [("yesterday", "is neither BEGIN nor an entry id"), ("", "Type an offset")],
)
def test_a_wrong_offset_is_refused_on_the_form_and_nothing_moves(
    admin_client, order_type, offset, error
):
    append(order_type, 0, 1)
    subscription = subscribe("order.created", read_from="end")
    before = cursors_of(subscription)
    response = confirm(admin_client, subscription, target="offsets", offset_0=offset)
    assert response.status_code == 200
    assert response.redirect_chain == []
    assert error in response.content.decode()
    assert cursors_of(subscription) == before


def test_an_offset_after_the_newest_event_is_refused(admin_client, order_type):
    newest = append(order_type, 0, 1)[0]
    subscription = subscribe("order.created", read_from="end")
    ms = int(newest.split("-")[0])
    response = confirm(admin_client, subscription, target="offsets", offset_0=f"{ms + 1}-0")
    assert "after the newest event" in response.content.decode()
    assert cursors_of(subscription) == {0: newest, 1: BEGIN}


def test_a_target_must_be_chosen(admin_client, order_type):
    subscription = subscribe("order.created")
    response = confirm(admin_client, subscription)
    assert response.redirect_chain == []
    assert "This field is required" in response.content.decode()


def test_a_reset_while_another_runs_reports_the_conflict(admin_client, order_type):
    append(order_type, 0, 1)
    subscription = subscribe("order.created", read_from="end")
    before = cursors_of(subscription)
    redis_client().set(resetting_key(str(subscription.pk)), "1")
    response = confirm(admin_client, subscription, target="begin")
    assert response.redirect_chain == [(LIST, 302)]
    assert any("already in progress" in note for note in notes(response)), notes(response)
    assert cursors_of(subscription) == before


def test_several_subscriptions_are_reset_each_to_its_own_choice(admin_client, order_type):
    newest = append(order_type, 0, 1)[0]
    one = subscribe("order.created", read_from="end", group="one")
    two = subscribe("order.created", read_from="end", group="two")
    data = {
        "action": "reset_cursors",
        "_selected_action": [str(one.pk), str(two.pk)],
        "apply": "Reset cursors",
        f"{one.pk}-target": "begin",
        f"{two.pk}-target": "end",
    }
    response = admin_client.post(LIST, data, follow=True)
    assert len([note for note in notes(response) if "were reset" in note]) == 2
    assert cursors_of(one) == {0: BEGIN, 1: BEGIN}
    assert cursors_of(two) == {0: newest, 1: BEGIN}


def test_the_change_page_has_a_reset_button_that_returns_to_it(admin_client, order_type):
    subscription = subscribe("order.created", read_from="begin")
    change = f"/admin/events/subscription/{subscription.pk}/change/"
    reset = f"/admin/events/subscription/{subscription.pk}/reset-cursors/"
    assert f'href="{reset}"' in admin_client.get(change).content.decode()
    assert admin_client.get(reset).status_code == 200
    newest = append(order_type, 0, 1)[0]
    response = admin_client.post(
        reset, {"apply": "Reset cursors", f"{subscription.pk}-target": "end"}, follow=True
    )
    assert response.redirect_chain == [(change, 302)]
    assert cursors_of(subscription) == {0: newest, 1: BEGIN}


def test_the_reset_page_of_an_unknown_subscription_is_not_found(admin_client):
    missing = "00000000-0000-0000-0000-000000000000"
    assert admin_client.get(f"{LIST}{missing}/reset-cursors/").status_code == 404


def test_nothing_is_reset_while_redis_is_down(admin_client, order_type, settings):
    subscription = subscribe("order.created", read_from="begin")
    before = cursors_of(subscription)
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = choose(admin_client, subscription)
    assert response.status_code == 302
    response = admin_client.get(response["Location"])
    assert any("Redis is not answering" in note for note in notes(response)), notes(response)
    assert cursors_of(subscription) == before
