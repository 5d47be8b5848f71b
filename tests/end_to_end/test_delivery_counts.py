"""Delivery counts end to end, over a real Daphne (issue 10): a consumer that stops on a
poison event has been sent the healthy events behind it too, and only the poison event
becomes a dead letter, whether the consumer closes its stream after a data batch or a
keep-alive, its server is killed, the subscription is shared, a batch holds the poison
event and a healthy one, the healthy one is on another partition, or the session loses
its partition and takes it back.
"""

from __future__ import annotations

import signal
from typing import Any

import httpx

from events import jobs
from events.models import EventType
from events.store import keys
from events.store.connections import redis_client
from streamsite.processes import wait_until
from tests.helpers import business_event, event_type_body, subscribe_over_api
from tests.live import LEASE_SECONDS, numbers, session_ids
from tests.streams import Stream


def stream(streams: list[Stream], server: Any, token: str, subscription: str, **params) -> Stream:
    """A stream with a client's own parameters (none of the tests' defaults)."""
    opened = Stream(server.url, token, subscription, **params)
    streams.append(opened)
    return opened


def publish_poison_first(api: httpx.Client) -> None:
    """One request with three events: `poison-0`, then the healthy `fine-0` and `fine-1`."""
    body = [
        {"metadata": {"eid": e, "occurred_at": "2026-11-21T10:00:00Z"}, "order_number": n}
        for e, n in (
            ("3f1c2a0e-8c1b-4d4e-9f7a-0b6e5d4c3b20", "poison-0"),
            ("3f1c2a0e-8c1b-4d4e-9f7a-0b6e5d4c3b21", "fine-0"),
            ("3f1c2a0e-8c1b-4d4e-9f7a-0b6e5d4c3b22", "fine-1"),
        )
    ]
    response = api.post("/api/event-types/order.created/events", json=body)
    assert response.status_code == 200, response.text


def crash_on_first_batch(opened: Stream, api: httpx.Client, subscription: str) -> list[str]:
    """The consumer reads its first data batch and fails on it: it closes without a
    commit, and the session is gone at once. The events of that batch.
    """
    opened.wait(lambda s: bool(s.data_batches()))
    first = numbers(opened.data_batches()[0]["events"])
    opened.close()
    wait_until(
        lambda: not session_ids(api, subscription),
        timeout=LEASE_SECONDS / 2,
        interval=0.05,
        message="the failed session to leave",
    )
    return first


def dead_letters(api: httpx.Client, subscription: str) -> list[tuple[str, int]]:
    """What the dead_letters job stored: (order number, deliveries) each."""
    jobs.dead_letters()
    page = api.get(f"/api/subscriptions/{subscription}/dead-letters").json()
    return [(d["event"]["order_number"], d["deliveries"]) for d in page["items"]]


def test_a_poison_event_is_dead_lettered_alone_when_the_events_behind_it_were_sent_too(
    consumer_api, live_server, consumer_token, streams
):
    subscription = subscribe_over_api(consumer_api, max_deliveries=2)
    publish_poison_first(consumer_api)
    params = {"batch_limit": 1, "batch_flush_timeout": 1}  # as the consumer asks
    for _ in range(2):
        failing = stream(streams, live_server, consumer_token, subscription, **params)
        assert crash_on_first_batch(failing, consumer_api, subscription) == ["poison-0"]
        assert numbers(failing.events) == ["poison-0", "fine-0", "fine-1"]  # all were sent

    healthy = stream(streams, live_server, consumer_token, subscription, **params)
    healthy.wait(lambda s: len(s.events) == 2, timeout=3)
    assert numbers(healthy.events) == ["fine-0", "fine-1"]
    healthy.commit_all()
    assert dead_letters(consumer_api, subscription) == [("poison-0", 2)]


def test_a_healthy_event_in_the_poison_event_s_batch_is_sent_alone_and_survives(
    consumer_api, live_server, consumer_token, streams
):
    subscription = subscribe_over_api(consumer_api, max_deliveries=2)
    publish_poison_first(consumer_api)
    params = {"batch_limit": 2, "batch_flush_timeout": 1}
    first = stream(streams, live_server, consumer_token, subscription, **params)
    assert crash_on_first_batch(first, consumer_api, subscription) == ["poison-0", "fine-0"]
    # Both were in the failed batch: each is sent again in a batch of its own.
    second = stream(streams, live_server, consumer_token, subscription, **params)
    assert crash_on_first_batch(second, consumer_api, subscription) == ["poison-0"]
    assert [numbers(b["events"]) for b in second.data_batches()][:2] == [["poison-0"], ["fine-0"]]

    healthy = stream(streams, live_server, consumer_token, subscription, **params)
    healthy.wait(lambda s: len(s.events) == 2, timeout=3)
    assert numbers(healthy.events) == ["fine-0", "fine-1"]
    healthy.commit_all()
    assert dead_letters(consumer_api, subscription) == [("poison-0", 2)]


def test_a_close_right_after_a_keep_alive_charges_only_the_batch_it_failed_on(
    consumer_api, live_server, consumer_token, streams
):
    subscription = subscribe_over_api(consumer_api, max_deliveries=2)
    publish_poison_first(consumer_api)
    params = {"batch_limit": 1, "batch_flush_timeout": 1}
    for _ in range(2):
        failing = stream(streams, live_server, consumer_token, subscription, **params)
        failing.wait(lambda s: len(s.batches) > len(s.data_batches()) + 1)  # a keep-alive came
        assert crash_on_first_batch(failing, consumer_api, subscription) == ["poison-0"]

    healthy = stream(streams, live_server, consumer_token, subscription, **params)
    healthy.wait(lambda s: len(s.events) == 2, timeout=3)
    assert numbers(healthy.events) == ["fine-0", "fine-1"]
    assert dead_letters(consumer_api, subscription) == [("poison-0", 2)]


def test_a_server_killed_while_its_client_failed_on_the_poison_event_charges_it_once(
    consumer_api, live_server, doomed_server, consumer_token, streams
):
    subscription = subscribe_over_api(consumer_api, max_deliveries=2)
    publish_poison_first(consumer_api)
    params = {"batch_limit": 1, "batch_flush_timeout": 1}
    victim = stream(streams, doomed_server, consumer_token, subscription, **params)
    victim.wait(lambda s: len(s.events) == 3)
    doomed_server.process.send_signal(signal.SIGKILL)  # nothing released: the lease lapses
    doomed_server.process.wait(10)

    def lapsed() -> bool:
        jobs.reclaim()  # what the scheduler runs every JOB_PERIOD_SECONDS
        return not session_ids(consumer_api, subscription)

    wait_until(lapsed, timeout=LEASE_SECONDS + 10, interval=0.5, message="the lease to lapse")
    failing = stream(streams, live_server, consumer_token, subscription, **params)
    assert crash_on_first_batch(failing, consumer_api, subscription) == ["poison-0"]

    healthy = stream(streams, live_server, consumer_token, subscription, **params)
    healthy.wait(lambda s: len(s.events) == 2, timeout=3)
    assert numbers(healthy.events) == ["fine-0", "fine-1"]
    assert dead_letters(consumer_api, subscription) == [("poison-0", 2)]


def test_on_a_shared_subscription_only_the_poison_event_is_dead_lettered(
    consumer_api, live_server, consumer_token, streams
):
    subscription = subscribe_over_api(consumer_api, max_deliveries=2, mode="shared")
    publish_poison_first(consumer_api)
    params = {"batch_limit": 1, "batch_flush_timeout": 1}
    for _ in range(2):
        failing = stream(streams, live_server, consumer_token, subscription, **params)
        assert crash_on_first_batch(failing, consumer_api, subscription) == ["poison-0"]
        failing.wait(lambda s: len(s.events) == 3)

    healthy = stream(streams, live_server, consumer_token, subscription, **params)
    healthy.wait(lambda s: len(s.events) == 2, timeout=3)
    assert sorted(numbers(healthy.events)) == ["fine-0", "fine-1"]
    assert dead_letters(consumer_api, subscription) == [("poison-0", 2)]


def test_a_healthy_event_on_another_partition_is_not_charged_with_the_poison_event(
    consumer_api, live_server, consumer_token, streams
):
    body = event_type_body(partitions=2, partition_strategy="user_defined")
    assert consumer_api.post("/api/event-types", json=body).status_code == 201
    subscription = consumer_api.post(
        "/api/subscriptions",
        json={
            "owning_application": "shop",
            "event_types": ["order.created"],
            "read_from": "begin",
            "max_deliveries": 2,
        },
    ).json()["id"]
    events = [business_event("poison-0"), business_event("fine-1")]
    events[0]["metadata"]["partition"], events[1]["metadata"]["partition"] = "0", "1"
    answer = consumer_api.post("/api/event-types/order.created/events", json=events)
    assert answer.status_code == 200, answer.text
    params = {"batch_limit": 1, "batch_flush_timeout": 1}
    for _ in range(2):  # the client commits each batch it handled, and stops on the poison
        failing = stream(streams, live_server, consumer_token, subscription, **params)
        failing.wait(lambda s: len(s.events) == 2)
        assert numbers(failing.data_batches()[0]["events"]) == ["poison-0"]  # sent first
        failing.close()
        wait_until(
            lambda: not session_ids(consumer_api, subscription),
            timeout=LEASE_SECONDS / 2,
            interval=0.05,
            message="the failed session to leave",
        )

    healthy = stream(streams, live_server, consumer_token, subscription, **params)
    healthy.wait(lambda s: len(s.events) == 1, timeout=3)
    assert numbers(healthy.events) == ["fine-1"]  # sent after the poison: never charged
    assert dead_letters(consumer_api, subscription) == [("poison-0", 2)]


def test_a_session_that_loses_its_partition_and_takes_it_back_charges_only_its_first_batch(
    consumer_api, live_server, consumer_token, streams
):
    subscription = subscribe_over_api(consumer_api, max_deliveries=2)
    publish_poison_first(consumer_api)
    params = {"batch_limit": 1, "batch_flush_timeout": 1}
    failing = stream(streams, live_server, consumer_token, subscription, **params)
    failing.wait(lambda s: len(s.events) == 3)
    # Redis loses the lease (as a failover may): at its next heartbeat the session finds
    # the partition gone, takes it back and claims what it held: the first batch, charged.
    event_type = EventType.objects.get(name="order.created")
    redis_client().delete(keys.lease_key(event_type.store_id, 0, subscription))
    failing.wait(lambda s: len(s.events) == 6)
    assert numbers(failing.events) == ["poison-0", "fine-0", "fine-1"] * 2
    assert crash_on_first_batch(failing, consumer_api, subscription) == ["poison-0"]

    healthy = stream(streams, live_server, consumer_token, subscription, **params)
    healthy.wait(lambda s: len(s.events) == 2, timeout=3)
    assert numbers(healthy.events) == ["fine-0", "fine-1"]
    assert dead_letters(consumer_api, subscription) == [("poison-0", 2)]
