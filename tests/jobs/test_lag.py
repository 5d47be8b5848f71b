"""The stats job's lag snapshot: unconsumed events, pending entries and time lag of every
partition of every subscription, measured on the test session's Redis, whose group state
each test writes as delivery does (XREADGROUP, XACK, the committed offset).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from events import jobs
from events.jobs import lag as lag_job
from events.models import Subscription
from events.store import keys, lag
from events.store.connections import redis_client
from events.store.job_leases import exclusive
from events.store.keys import committed_key
from tests.helpers import subscribe

pytestmark = pytest.mark.django_db

TAG = re.compile(r"<[^>]+>")


def redis_now_ms() -> int:
    seconds, micros = redis_client().time()
    return seconds * 1000 + micros // 1000


def consume(stream: str, partition: int, sub: str, *, read: int, commit: int) -> list[str]:
    """What a session does: read `read` entries through the group, commit the first
    `commit` of them (ack and record the offset). Returns the ids read.
    """
    client = redis_client()
    log = keys.log_key(stream, partition)
    client.xgroup_create(log, sub, id="0", mkstream=True)
    reply: Any = client.xreadgroup(sub, "session-a", {log: ">"}, count=read)
    ids = [entry_id.decode() for entry_id, _ in reply[0][1]]
    if commit:
        client.xack(log, sub, *ids[:commit])
        client.set(committed_key(stream, partition, sub), ids[commit - 1])
    return ids


@pytest.fixture
def backlog(order_type) -> tuple[Subscription, str]:
    """A subscription from BEGIN; partition 0 holds 5 events from 90 s ago, 3 of them
    read by a session, the first of those committed; partition 1 is empty.
    """
    subscription = subscribe("order.created")
    log = keys.log_key(order_type.store_id, 0)
    ninety_seconds_ago = redis_now_ms() - 90_000
    for seq in range(5):
        redis_client().xadd(log, {"e": b"{}"}, id=f"{ninety_seconds_ago}-{seq}")
    consume(order_type.store_id, 0, str(subscription.pk), read=3, commit=1)
    return subscription, log


def partitions(snapshot: lag.Snapshot, subscription: Subscription) -> dict:
    rows = snapshot["subscriptions"][str(subscription.pk)]["partitions"]
    return {(row["event_type"], row["partition"]): row for row in rows}


def test_it_records_unconsumed_pending_and_lag_of_every_partition(backlog):
    subscription, _ = backlog
    assert lag_job.record_lag(redis_client(), [subscription]) == 2

    rows = partitions(lag.snapshot(redis_client()), subscription)
    busy = rows[("order.created", 0)]
    # Two never delivered plus the two delivered and not committed.
    assert (busy["unconsumed_events"], busy["pending"]) == (4, 2)
    assert 89 <= busy["consumer_lag_seconds"] <= 100
    # No session ever read partition 1: no group, nothing to consume.
    assert rows[("order.created", 1)] == {
        "event_type": "order.created",
        "partition": 1,
        "unconsumed_events": 0,
        "pending": None,
        "consumer_lag_seconds": 0,
    }


def test_it_agrees_with_the_stats_endpoint(backlog, client, admin_token):
    subscription, _ = backlog
    lag_job.record_lag(redis_client(), [subscription])
    api = client.get(
        f"/api/subscriptions/{subscription.pk}/stats?show_time_lag=true",
        HTTP_AUTHORIZATION=f"Bearer {admin_token}",
    )
    assert api.status_code == 200
    served = {
        int(p["partition"]): (p["unconsumed_events"], p["consumer_lag_seconds"])
        for p in api.json()["items"][0]["partitions"]
    }
    rows = partitions(lag.snapshot(redis_client()), subscription)
    for number, (unconsumed, seconds) in served.items():
        row = rows[("order.created", number)]
        assert row["unconsumed_events"] == unconsumed
        assert abs(row["consumer_lag_seconds"] - seconds) <= 1


def test_a_partition_nobody_read_yet_counts_every_event_from_begin(order_type):
    subscription = subscribe("order.created")
    log = keys.log_key(order_type.store_id, 1)
    for _ in range(7):
        redis_client().xadd(log, {"e": b"{}"})
    lag_job.record_lag(redis_client(), [subscription])
    row = partitions(lag.snapshot(redis_client()), subscription)[("order.created", 1)]
    assert (row["unconsumed_events"], row["pending"]) == (7, None)


def test_the_snapshot_carries_the_time_of_the_run_on_redis_s_clock(backlog):
    subscription, _ = backlog
    before = redis_now_ms()
    lag_job.record_lag(redis_client(), [subscription])
    after = redis_now_ms()

    snapshot = lag.snapshot(redis_client())
    at = snapshot["at"]
    assert at is not None
    assert before <= at <= after
    recorded = snapshot["subscriptions"][str(subscription.pk)]
    assert recorded["at"] == at
    assert lag.of_subscription(redis_client(), str(subscription.pk)) == recorded


def test_before_any_run_the_snapshot_is_empty(db):
    assert lag.snapshot(redis_client()) == {"at": None, "subscriptions": {}}
    assert lag.of_subscription(redis_client(), "no-such-subscription") is None


def test_a_second_run_records_the_same_and_changes_nothing_else(backlog, order_type):
    subscription, log = backlog
    client = redis_client()

    def delivery_state() -> dict:
        keys = sorted(k for k in client.keys("ss:*") if not k.startswith(b"ss:stats:"))
        return {
            "keys": keys,
            "groups": client.xinfo_groups(log),
            "pending": [  # who holds what, delivered how often (idle time grows anyway)
                (p["message_id"], p["consumer"], p["times_delivered"])
                for p in client.xpending_range(log, str(subscription.pk), "-", "+", 100)
            ],
            "entries": client.xrange(log),
            "committed": client.get(committed_key(order_type.store_id, 0, str(subscription.pk))),
        }

    assert lag_job.record_lag(client, [subscription]) == 2
    first = lag.snapshot(client)
    before = delivery_state()

    assert lag_job.record_lag(client, [subscription]) == 2

    second = lag.snapshot(client)
    assert delivery_state() == before
    assert (first["at"] or 0) <= (second["at"] or 0)
    for key, row in partitions(first, subscription).items():
        again = partitions(second, subscription)[key]
        seconds = again.pop("consumer_lag_seconds") - row.pop("consumer_lag_seconds")
        assert again == row
        assert 0 <= seconds <= 1  # the events only grew older


def test_deleted_subscriptions_drop_out_of_the_next_snapshot(backlog, order_type):
    subscription, _ = backlog
    other = subscribe("order.created", group="other")
    lag_job.record_lag(redis_client(), [subscription, other])
    assert set(lag.snapshot(redis_client())["subscriptions"]) == {
        str(subscription.pk),
        str(other.pk),
    }
    lag_job.record_lag(redis_client(), [other])
    assert set(lag.snapshot(redis_client())["subscriptions"]) == {str(other.pk)}
    lag_job.record_lag(redis_client(), [])
    assert lag.snapshot(redis_client())["subscriptions"] == {}


def test_the_stats_job_measures_every_subscription_once_at_a_time(backlog):
    subscription, _ = backlog
    with exclusive("stats") as taken:
        assert taken
        assert jobs.stats() == jobs.SKIPPED
    assert lag.snapshot(redis_client())["at"] is None
    assert jobs.stats() == {"partitions": 2}
    assert str(subscription.pk) in lag.snapshot(redis_client())["subscriptions"]


def test_the_change_page_shows_the_recorded_lag_and_when(admin_client, backlog):
    subscription, _ = backlog
    url = f"/admin/events/subscription/{subscription.pk}/change/"
    html = admin_client.get(url).content.decode()
    assert "Lag (as of the last stats run)" in html
    assert 'id="recorded-lag-none"' in html

    lag_job.record_lag(redis_client(), [subscription])
    html = admin_client.get(url).content.decode()
    assert "As of the last stats run" in html
    row = re.search(
        r'<tr data-event-type="order.created" data-partition="0" data-recorded="1">(.*?)</tr>',
        html,
        re.S,
    )
    assert row
    cells = [TAG.sub("", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", row[1], re.S)]
    assert cells[:4] == ["order.created", "0", "4", "2"]
    assert 89 <= int(cells[4]) <= 100
