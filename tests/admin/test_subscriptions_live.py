"""The subscription change page's live state: partitions, owners, lag and live sessions,
read from the test session's Redis, whose state each test writes directly.
"""

from __future__ import annotations

import re

import pytest

from events.models import Subscription
from events.store import keys
from events.store.connections import redis_client
from events.store.keys import committed_key, lease_key, sessions_key
from streamsite.processes import free_port
from tests.helpers import subscribe

pytestmark = pytest.mark.django_db

FAR_FUTURE_MS = 10**14  # a session expiry that never passes during a test
TAG = re.compile(r"<[^>]+>")


def change_page(admin_client, subscription: Subscription) -> str:
    page = admin_client.get(f"/admin/events/subscription/{subscription.pk}/change/")
    assert page.status_code == 200
    return page.content.decode()


def cells(html: str, **attrs: object) -> list[str]:
    """The text of each cell of the table row carrying these data- attributes."""
    selector = "".join(f' data-{key.replace("_", "-")}="{value}"' for key, value in attrs.items())
    row = re.search(rf"<tr{re.escape(selector)}>(.*?)</tr>", html, re.S)
    assert row, f"no row{selector}"
    return [TAG.sub("", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", row[1], re.S)]


def redis_now_ms() -> int:
    seconds, micros = redis_client().time()
    return seconds * 1000 + micros // 1000


def test_the_change_page_shows_each_partitions_owner_offset_and_lag(admin_client, order_type):
    subscription = subscribe("order.created")
    sub = str(subscription.pk)
    client = redis_client()
    minute_and_a_half_ago = redis_now_ms() - 90_000
    for seq in range(3):
        client.xadd(
            keys.log_key(order_type.store_id, 0),
            {"n": str(seq)},
            id=f"{minute_and_a_half_ago}-{seq}",
        )
    client.xadd(keys.log_key(order_type.store_id, 1), {"n": "x"})
    client.zadd(sessions_key(sub), {"session-a": FAR_FUTURE_MS, "session-b": FAR_FUTURE_MS})
    client.hset(
        lease_key(order_type.store_id, 0, sub), mapping={"session": "session-a", "token": 1}
    )
    client.hset(
        lease_key(order_type.store_id, 1, sub), mapping={"session": "session-gone", "token": 4}
    )

    html = change_page(admin_client, subscription)

    assert "Live state (from Redis)" in html
    state, session, offset, unconsumed, lag = cells(html, event_type="order.created", partition=0)[
        2:
    ]
    assert (state, session, offset, unconsumed) == ("assigned", "session-a", "BEGIN", "3")
    assert 89 <= int(lag) <= 100
    assert cells(html, event_type="order.created", partition=1)[2:6] == [
        "reassigning",
        "session-gone",
        "BEGIN",
        "1",
    ]
    assert cells(html, session="session-a") == ["session-a", "1"]
    assert cells(html, session="session-b") == ["session-b", "0"]
    assert 'data-session="session-gone"' not in html


def test_a_subscription_nobody_reads_shows_unassigned_partitions_and_no_sessions(
    admin_client, order_type
):
    subscription = subscribe("order.created")
    html = change_page(admin_client, subscription)
    for partition in (0, 1):
        assert cells(html, event_type="order.created", partition=partition)[2:6] == [
            "unassigned",
            "\u2013",  # an en dash: no owner
            "BEGIN",
            "0",
        ]
    assert 'id="no-live-sessions"' in html


def test_an_expired_session_is_not_live(admin_client, order_type):
    subscription = subscribe("order.created")
    redis_client().zadd(sessions_key(str(subscription.pk)), {"session-old": redis_now_ms() - 1})
    html = change_page(admin_client, subscription)
    assert 'data-session="session-old"' not in html
    assert 'id="no-live-sessions"' in html


def test_the_committed_offset_in_redis_is_the_one_shown(admin_client, order_type):
    subscription = subscribe("order.created")
    log = keys.log_key(order_type.store_id, 0)
    first = redis_client().xadd(log, {"n": "1"}).decode()
    redis_client().xadd(log, {"n": "2"})
    redis_client().set(committed_key(order_type.store_id, 0, str(subscription.pk)), first)
    html = change_page(admin_client, subscription)
    # No session read the partition yet, so Redis has no group to count from: the count
    # is unknown rather than a scan of the partition.
    assert cells(html, event_type="order.created", partition=0)[4:6] == [first, "unknown"]


def test_the_page_says_redis_is_not_answering_instead_of_failing(
    admin_client, order_type, settings
):
    subscription = subscribe("order.created")
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    html = change_page(admin_client, subscription)
    assert 'id="live-state-error"' in html
    assert "Redis is not answering" in html
    assert 'name="commit_timeout"' in html  # the rest of the page still works
