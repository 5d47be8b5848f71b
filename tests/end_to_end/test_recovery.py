"""Recovery end to end, over a real Daphne: a consumer process and a server process killed
with SIGKILL, a poison event through the dead letters and back, shared subscriptions with
acks, topic filters.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

import httpx

from events import jobs
from events.catalog import dead_letters
from events.models import DeadLetter
from streamsite.processes import wait_until
from tests.conftest import ROOT
from tests.helpers import business_event, subscribe_over_api
from tests.live import LEASE_SECONDS, numbers, open_stream, publish, session_ids
from tests.streams import Stream

# A consumer in a process of its own: it commits its first batch, says so, and is killed
# while it holds the second.
CONSUMER = """
import sys, httpx, orjson
url, token, subscription = sys.argv[1:4]
client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=None)
params = {"batch_limit": 4, "max_uncommitted_events": 100, "batch_flush_timeout": 1}
with client.stream("GET", f"/api/subscriptions/{subscription}/events", params=params) as r:
    store_id = r.headers["X-Nakadi-StreamId"]
    seen = 0
    for line in r.iter_lines():
        batch = orjson.loads(line)
        if not batch.get("events"):
            continue
        seen += 1
        if seen == 1:
            answer = client.post(f"/api/subscriptions/{subscription}/cursors",
                json={"items": [batch["cursor"]]}, headers={"X-Nakadi-StreamId": store_id})
            assert answer.status_code == 204, answer.text
        else:
            print("holding", flush=True)
"""


def test_a_consumer_killed_mid_batch_leaves_exactly_its_uncommitted_events(
    consumer_api, live_server, consumer_token, streams
):
    subscription = subscribe_over_api(consumer_api)
    sent = publish(consumer_api, 10)
    consumer = subprocess.Popen(
        [sys.executable, "-c", CONSUMER, live_server.url, consumer_token, subscription],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert consumer.stdout is not None
        assert consumer.stdout.readline() == b"holding\n"  # first batch committed
    finally:
        consumer.send_signal(signal.SIGKILL)
        consumer.wait(10)
    killed_at = time.monotonic()
    successor = open_stream(streams, live_server, consumer_token, subscription, batch_limit=4)
    successor.wait(lambda s: len(s.events) == 6, timeout=LEASE_SECONDS + 5)
    assert time.monotonic() - killed_at < LEASE_SECONDS + jobs_period()
    assert numbers(successor.events) == sent[4:]


def jobs_period() -> float:
    from django.conf import settings

    return float(settings.JOB_PERIOD_SECONDS)


def test_a_server_killed_mid_batch_hands_its_partitions_over_within_lease_and_job_period(
    consumer_api, live_server, doomed_server, consumer_token, streams
):
    subscription = subscribe_over_api(consumer_api, partitions=2)
    victim = open_stream(streams, doomed_server, consumer_token, subscription, batch_limit=5)
    sent = publish(consumer_api, 20)
    victim.wait(lambda s: len(s.events) == 20)
    committed = victim.last_cursor("0")
    assert victim.commit(committed).status_code == 204  # partition 1 stays uncommitted
    committed_numbers = {
        e["order_number"]
        for b in victim.data_batches()
        if b["cursor"]["partition"] == "0"
        for e in b["events"]
    }
    doomed_server.process.send_signal(signal.SIGKILL)
    doomed_server.process.wait(10)
    killed_at = time.monotonic()
    survivor = open_stream(streams, live_server, consumer_token, subscription, batch_limit=5)

    def recovered() -> bool:
        jobs.reclaim()  # what the scheduler runs every JOB_PERIOD_SECONDS
        return len(survivor.events) >= len(sent) - len(committed_numbers)

    wait_until(recovered, timeout=LEASE_SECONDS + 10, interval=0.5, message="the hand-over")
    assert time.monotonic() - killed_at < LEASE_SECONDS + jobs_period() + 1
    assert sorted(numbers(survivor.events)) == sorted(set(sent) - committed_numbers)


def test_a_poison_event_is_dead_lettered_and_later_events_keep_flowing(
    consumer_api, live_server, consumer_token, streams, admin_client
):
    subscription = subscribe_over_api(consumer_api, max_deliveries=2)
    publish(consumer_api, 1, prefix="poison")
    publish(consumer_api, 2, prefix="fine")
    params = {"batch_limit": 1, "max_uncommitted_events": 1}
    for _ in range(2):  # delivered twice, never committed: the consumer crashes on it
        crashing = open_stream(streams, live_server, consumer_token, subscription, **params)
        crashing.wait(lambda s: len(s.events) == 1)
        assert numbers(crashing.events) == ["poison-0"]
        crashing.close()
        # A closed stream gives its partition back at once (tests/streaming/test_leaving.py),
        # not when its lease lapses: well within the lease time, so a lapsed lease cannot pass.
        wait_until(
            lambda: not session_ids(consumer_api, subscription),
            timeout=LEASE_SECONDS / 2,
            interval=0.05,
            message="the crashed session to leave",
        )
    healthy = open_stream(streams, live_server, consumer_token, subscription, **params)
    healthy.wait(lambda s: len(s.events) == 1)
    assert numbers(healthy.events) == ["fine-0"]  # the partition moved on
    healthy.commit_all()
    healthy.wait(lambda s: len(s.events) == 2)
    healthy.commit_all()

    assert jobs.dead_letters() == {"stored": 1}
    letter = DeadLetter.objects.get()
    assert (letter.deliveries, letter.reason, letter.partition) == (2, "max_deliveries", 0)
    assert '"poison-0"' in letter.body
    page = admin_client.get("/admin/events/deadletter/")
    assert page.status_code == 200
    assert letter.offset in page.content.decode()

    new_offset = dead_letters.replay(letter)
    healthy.wait(lambda s: len(s.events) == 3)
    assert numbers(healthy.events)[2] == "poison-0"  # delivered again, to this subscription
    assert healthy.last_cursor()["offset"] == new_offset


def ack(api: httpx.Client, subscription: str, batch: dict[str, Any]) -> httpx.Response:
    cursor = batch["cursor"]
    items = [
        {"event_type": cursor["event_type"], "partition": cursor["partition"], "offset": o}
        for o in batch["offsets"]
    ]
    return api.post(f"/api/subscriptions/{subscription}/acks", json={"items": items})


def test_shared_sessions_share_the_load_and_unacked_events_go_to_another(
    consumer_api, live_server, consumer_token, streams
):
    subscription = subscribe_over_api(consumer_api, partitions=2, mode="shared", ack_timeout=1)
    params = {"batch_limit": 1, "max_uncommitted_events": 5}
    three = [open_stream(streams, live_server, consumer_token, subscription, **params)]
    three += [open_stream(streams, live_server, consumer_token, subscription, **params)]
    three += [open_stream(streams, live_server, consumer_token, subscription, **params)]
    sent = publish(consumer_api, 15)
    for stream in three:  # nobody acks yet: each holds its window of 5
        stream.wait(lambda s: len(s.events) == 5)
    idle, *working = three
    held = set(numbers(idle.events))
    acked: set[str] = set()

    def ack_new() -> bool:
        for stream in working:
            for batch in stream.data_batches():
                number = batch["events"][0]["order_number"]
                if number not in acked:
                    assert ack(consumer_api, subscription, batch).status_code == 204
                    acked.add(number)
        return acked == set(sent)

    wait_until(ack_new, timeout=20, interval=0.1, message="every event acked by the workers")
    assert held <= acked  # the idle session's events went to the others after 1 s
    again = ack(consumer_api, subscription, idle.data_batches()[0])
    assert again.status_code == 200
    assert {item["result"] for item in again.json()["items"]} == {"not_pending"}


def test_acks_are_refused_on_an_ordered_subscription_and_commits_on_a_shared_one(
    consumer_api, live_server, consumer_token, streams
):
    ordered = subscribe_over_api(consumer_api)
    item = {"event_type": "order.created", "partition": "0", "offset": "1-0"}
    refused = consumer_api.post(f"/api/subscriptions/{ordered}/acks", json={"items": [item]})
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    body = {"owning_application": "shop", "event_types": ["order.created"], "mode": "shared"}
    body["consumer_group"] = "sink"
    shared = consumer_api.post("/api/subscriptions", json=body).json()["id"]
    stream = open_stream(streams, live_server, consumer_token, shared)
    commit = stream.commit(item)
    assert commit.status_code == 422
    assert "acknowledge" in commit.json()["detail"]


def test_a_topic_filter_delivers_matching_events_and_still_advances_past_the_rest(
    consumer_api, live_server, consumer_token, streams
):
    subscription = subscribe_over_api(consumer_api, topics=["order.eu.*"])
    events = [
        business_event("eu-1", **{}),
        business_event("us-1"),
        business_event("eu-2"),
        business_event("none"),
    ]
    for event, topic in zip(events, ["order.eu.de", "order.us", "order.eu.fr", None], strict=True):
        if topic:
            event["metadata"]["topic"] = topic
    response = consumer_api.post("/api/event-types/order.created/events", json=events)
    assert response.status_code == 200, response.text
    stream = open_stream(streams, live_server, consumer_token, subscription)
    stream.wait(lambda s: len(s.events) == 2)
    assert numbers(stream.events) == ["eu-1", "eu-2"]
    stream.commit_all()

    def advanced() -> bool:
        stats = consumer_api.get(f"/api/subscriptions/{subscription}/stats").json()
        return stats["items"][0]["partitions"][0].get("unconsumed_events") == 0

    # The last event, filtered out, is committed by the session itself.
    wait_until(advanced, timeout=10, message="the subscription to advance past filtered events")


def test_a_stream_of_a_shared_subscription_carries_each_events_offset(
    consumer_api, live_server, consumer_token
):
    subscription = subscribe_over_api(consumer_api, mode="shared")
    publish(consumer_api, 3)
    stream = Stream(live_server.url, consumer_token, subscription, batch_limit=3)
    try:
        stream.wait(lambda s: len(s.events) == 3)
        batch = stream.data_batches()[0]
        assert len(batch["offsets"]) == 3
        assert batch["offsets"][-1] == batch["cursor"]["offset"]
    finally:
        stream.close()
