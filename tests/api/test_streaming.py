"""Subscription streams end to end over a real Daphne: batches, parameters, commits, closes."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest

from events.catalog.clients import create_client
from tests.helpers import business_event, event_type_body
from tests.streams import Stream


def setup_subscription(consumer_api, partitions: int = 1, read_from: str = "begin", **extra) -> str:
    created = consumer_api.post("/api/event-types", json=event_type_body(partitions=partitions))
    assert created.status_code == 201, created.text
    body = {"owning_application": "shop", "event_types": ["order.created"], "read_from": read_from}
    subscription = consumer_api.post("/api/subscriptions", json={**body, **extra})
    assert subscription.status_code == 201, subscription.text
    return str(subscription.json()["id"])


def publish(consumer_api, *numbers: str) -> None:
    response = consumer_api.post(
        "/api/event-types/order.created/events", json=[business_event(n) for n in numbers]
    )
    assert response.status_code == 200, response.text


@pytest.fixture
def open_stream(live_server, consumer_token):
    streams: list[Stream] = []

    def open_(subscription: str, **params) -> Stream:
        stream = Stream(live_server.url, consumer_token, subscription, **params)
        streams.append(stream)
        return stream

    yield open_
    for stream in streams:
        stream.close()


def numbers(events) -> list[str]:
    return [e["order_number"] for e in events]


def test_a_stream_delivers_every_event_in_order_with_the_store_id(consumer_api, open_stream):
    subscription = setup_subscription(consumer_api)
    publish(consumer_api, *(f"A-{i}" for i in range(25)))
    stream = open_stream(
        subscription, batch_limit=10, max_uncommitted_events=25, batch_flush_timeout=1
    )
    assert stream.status == 200
    assert stream.id
    stream.wait(lambda s: len(s.events) == 25)
    assert numbers(stream.events) == [f"A-{i}" for i in range(25)]
    sizes = [len(b["events"]) for b in stream.data_batches()]
    assert max(sizes) <= 10
    first = stream.batches[0]
    assert first["info"] == {"debug": "Stream started", "stream_id": stream.id}
    assert first["cursor"]["event_type"] == "order.created"
    offsets = [b["cursor"]["offset"] for b in stream.data_batches()]
    as_pairs = [tuple(map(int, o.split("-"))) for o in offsets]
    assert as_pairs == sorted(as_pairs)


def test_each_batch_holds_one_partition_and_order_holds_per_partition(consumer_api, open_stream):
    subscription = setup_subscription(consumer_api, partitions=3)
    for round_ in range(5):
        publish(consumer_api, *(f"R{round_}-{i}" for i in range(6)))
    stream = open_stream(
        subscription, batch_limit=4, max_uncommitted_events=30, batch_flush_timeout=1
    )
    stream.wait(lambda s: len(s.events) == 30)
    assert sorted(numbers(stream.events)) == sorted(f"R{r}-{i}" for r in range(5) for i in range(6))
    for batch in stream.data_batches():
        assert {e["metadata"]["partition"] for e in batch["events"]} == {
            batch["cursor"]["partition"]
        }
    for partition in "012":
        seen = [
            e["order_number"]
            for b in stream.data_batches()
            if b["cursor"]["partition"] == partition
            for e in b["events"]
        ]
        rounds = [int(n.split("-")[0][1:]) for n in seen]
        assert rounds == sorted(rounds)


def test_a_quiet_partition_gets_keep_alive_batches_with_its_cursor(consumer_api, open_stream):
    subscription = setup_subscription(consumer_api)
    publish(consumer_api, "A-1")
    stream = open_stream(subscription, batch_flush_timeout=1)
    stream.wait(lambda s: len(s.batches) >= 2)
    keep_alive = stream.batches[1]
    assert "events" not in keep_alive
    assert keep_alive["cursor"]["offset"] == stream.batches[0]["cursor"]["offset"]


def test_stream_limit_ends_the_stream_after_that_many_events(consumer_api, open_stream):
    subscription = setup_subscription(consumer_api)
    publish(consumer_api, *(f"A-{i}" for i in range(10)))
    stream = open_stream(subscription, batch_limit=2, stream_limit=4, max_uncommitted_events=10)
    stream.wait(lambda s: len(s.events) == 4)
    # Nakadi counts committed events: the stream stays open for the commit, then ends.
    assert stream.commit(stream.last_cursor()).status_code == 204
    assert stream.wait_closed() == "stream_limit"
    assert numbers(stream.events) == ["A-0", "A-1", "A-2", "A-3"]


def test_stream_timeout_and_keep_alive_limit_end_a_stream_with_their_reason(
    consumer_api, open_stream
):
    subscription = setup_subscription(consumer_api, partitions=2)
    timed = open_stream(subscription, stream_timeout=1, batch_flush_timeout=1)
    assert timed.wait_closed() == "stream_timeout"
    quiet = open_stream(subscription, stream_keep_alive_limit=2, batch_flush_timeout=1)
    assert quiet.wait_closed() == "keep_alive_limit"
    assert len([b for b in quiet.batches if "events" not in b]) >= 2


def test_max_uncommitted_events_holds_back_until_a_commit(consumer_api, open_stream):
    subscription = setup_subscription(consumer_api)
    publish(consumer_api, *(f"A-{i}" for i in range(12)))
    stream = open_stream(
        subscription, batch_limit=5, max_uncommitted_events=5, batch_flush_timeout=1
    )
    # After the first batch comes a keep-alive, not more events: the session waits for a
    # commit.
    stream.wait(lambda s: len(s.batches) >= 2)
    assert len(stream.events) == 5
    assert "events" not in stream.batches[1]
    assert stream.commit(stream.last_cursor()).status_code == 204
    stream.wait(lambda s: len(s.events) == 10)
    assert numbers(stream.events) == [f"A-{i}" for i in range(10)]


def test_batch_timespan_splits_batches_by_time(consumer_api, open_stream):
    subscription = setup_subscription(consumer_api)
    publish(consumer_api, "A-0", "A-1")
    publish_at = time.monotonic()
    while time.monotonic() - publish_at < 1.1:  # the next events land more than 1 s later
        time.sleep(0.05)
    publish(consumer_api, "A-2")
    stream = open_stream(subscription, batch_limit=10, batch_timespan=1, batch_flush_timeout=1)
    stream.wait(lambda s: len(s.events) == 3)
    assert [numbers(b["events"]) for b in stream.data_batches()] == [["A-0", "A-1"], ["A-2"]]


@pytest.mark.parametrize(
    "params",
    [
        {"batch_limit": 0},
        {"stream_limit": 1, "batch_limit": 2, "max_uncommitted_events": 5},
        {"stream_timeout": 5, "batch_flush_timeout": 10},
        {"commit_timeout": 61},
        {"batch_limit": "many"},
    ],
)
def test_invalid_parameters_get_422_before_any_byte(consumer_api, params):
    subscription = setup_subscription(consumer_api)
    response = consumer_api.get(f"/api/subscriptions/{subscription}/events", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"]


def test_streaming_needs_a_token_a_grant_and_a_subscription(consumer_api, live_server):
    subscription = setup_subscription(consumer_api)
    anonymous = httpx.get(f"{live_server.url}/api/subscriptions/{subscription}/events")
    assert anonymous.status_code == 401
    stranger = create_client("stranger")[1]
    with live_server.client(stranger) as http:
        assert http.get(f"/api/subscriptions/{subscription}/events").status_code == 403
    missing = consumer_api.get("/api/subscriptions/00000000-0000-0000-0000-000000000000/events")
    assert missing.status_code == 404
    assert consumer_api.delete(f"/api/subscriptions/{subscription}/events").status_code == 405


def test_commits_answer_204_200_and_422_as_nakadi_does(consumer_api, open_stream):
    subscription = setup_subscription(consumer_api, partitions=2)
    publish(consumer_api, *(f"A-{i}" for i in range(6)))
    stream = open_stream(
        subscription, batch_limit=1, max_uncommitted_events=10, batch_flush_timeout=1
    )
    stream.wait(lambda s: len(s.events) == 6)
    partition = stream.data_batches()[0]["cursor"]["partition"]
    cursor = stream.last_cursor(partition)
    assert stream.commit(cursor).status_code == 204
    again = stream.commit(cursor)
    assert again.status_code == 200
    assert again.json()["items"][0]["result"] == "outdated"
    assert again.json()["items"][0]["cursor"] == cursor  # with the cursor_token it was sent
    never_sent = {**cursor, "offset": f"{int(cursor['offset'].split('-')[0]) + 10**6}-0"}
    refused = stream.commit(never_sent)
    assert refused.status_code == 422
    assert "never sent" in refused.json()["detail"]
    for bad in (
        {**cursor, "offset": "yesterday"},
        {**cursor, "partition": "9"},
        {**cursor, "event_type": "x"},
    ):
        assert stream.commit(bad).status_code == 422
    unknown = consumer_api.post(
        f"/api/subscriptions/{subscription}/cursors",
        json={"items": [cursor]},
        headers={"X-Nakadi-StreamId": "not-a-session"},
    )
    assert unknown.status_code == 422
    assert "not a live session" in unknown.json()["detail"]
    cursors = consumer_api.get(f"/api/subscriptions/{subscription}/cursors").json()["items"]
    assert {c["partition"]: c["offset"] for c in cursors}[partition] == cursor["offset"]


def test_a_refused_commit_changes_nothing(consumer_api, open_stream):
    subscription = setup_subscription(consumer_api, partitions=2)
    publish(consumer_api, *(f"A-{i}" for i in range(4)))
    stream = open_stream(subscription, batch_limit=1, batch_flush_timeout=1)
    stream.wait(lambda s: len(s.events) == 4)
    good = stream.last_cursor()
    bad = {**good, "offset": "99999999999999-0"}
    assert stream.commit(good, bad).status_code == 422
    cursors = consumer_api.get(f"/api/subscriptions/{subscription}/cursors").json()["items"]
    assert all(c["offset"] == "BEGIN" for c in cursors)


def test_commit_timeout_closes_a_stream_and_the_keep_alive_commit_restarts_it(
    consumer_api, open_stream
):
    subscription = setup_subscription(consumer_api)
    publish(consumer_api, "A-1")
    lazy = open_stream(subscription, commit_timeout=1, batch_flush_timeout=1)
    assert lazy.wait_closed() == "commit_timeout"
    assert numbers(lazy.events) == ["A-1"]
    # The next session gets the uncommitted event again; it commits, then keeps the
    # stream alive with the keep-alive commit (the same cursor again) past the timeout.
    slow = open_stream(subscription, commit_timeout=1, batch_flush_timeout=1)
    slow.wait(lambda s: len(s.events) == 1)
    assert numbers(slow.events) == ["A-1"]
    cursor = slow.last_cursor()
    assert slow.commit(cursor).status_code == 204
    publish(consumer_api, "A-2")
    slow.wait(lambda s: len(s.events) == 2)
    started = time.monotonic()
    while time.monotonic() - started < 2.5:  # pacing, well past the 1 s commit timeout
        assert slow.commit(cursor).status_code == 200  # outdated: the keep-alive commit
        assert not slow.ended.is_set()
        time.sleep(0.3)
    assert slow.commit(slow.last_cursor()).status_code == 204


def test_a_stream_without_commit_timeout_uses_the_subscriptions(consumer_api, open_stream):
    subscription = setup_subscription(consumer_api, commit_timeout=1)
    publish(consumer_api, "A-1")
    stream = open_stream(subscription, batch_flush_timeout=1)
    assert stream.wait_closed() == "commit_timeout"


def test_read_from_end_starts_after_what_was_published_before_the_subscription(
    consumer_api, open_stream
):
    consumer_api.post("/api/event-types", json=event_type_body())
    publish(consumer_api, "old")
    subscription = consumer_api.post(
        "/api/subscriptions", json={"owning_application": "shop", "event_types": ["order.created"]}
    ).json()["id"]
    publish(consumer_api, "new")
    stream = open_stream(subscription, batch_flush_timeout=1)
    stream.wait(lambda s: len(s.events) == 1)
    assert numbers(stream.events) == ["new"]


def test_server_sent_events_frame_batches_keep_alives_and_the_close(
    consumer_api, live_server, consumer_token
):
    subscription = setup_subscription(consumer_api)
    publish(consumer_api, "A-1")
    response = httpx.get(
        f"{live_server.url}/api/subscriptions/{subscription}/events",
        # The event stays uncommitted: the stream waits one commit timeout for it, then ends.
        params={"stream_timeout": 1, "batch_flush_timeout": 1, "commit_timeout": 2},
        headers={"Authorization": f"Bearer {consumer_token}", "Accept": "text/event-stream"},
        timeout=10,
    )
    assert response.headers["content-type"] == "text/event-stream"
    messages = response.text.split("\n\n")
    assert messages[0] == "retry: 1000"
    batch = dict(line.split(": ", 1) for line in messages[1].splitlines())
    assert batch["event"] == "batch"
    data = orjson.loads(batch["data"])
    assert batch["id"] == data["cursor"]["cursor_token"]
    assert [e["order_number"] for e in data["events"]] == ["A-1"]
    kinds = [
        dict(line.split(": ", 1) for line in m.splitlines()).get("event") for m in messages if m
    ]
    assert "keep-alive" in kinds
    close = dict(line.split(": ", 1) for line in messages[-2].splitlines())
    assert close["event"] == "close"
    assert "id" not in close
    assert orjson.loads(close["data"])["close_reason"] == "stream_timeout"


def test_a_post_body_may_name_the_partitions_to_stream(consumer_api, open_stream):
    subscription = setup_subscription(consumer_api, partitions=3)
    publish(consumer_api, *(f"A-{i}" for i in range(30)))
    direct = open_stream(
        subscription,
        body={
            "partitions": [{"event_type": "order.created", "partition": "2"}],
            "batch_flush_timeout": 1,
        },
    )
    direct.wait(lambda s: len(s.batches) >= 1)
    assert direct.partitions() == {"2"}
    others = open_stream(subscription, batch_flush_timeout=1)
    others.wait(lambda s: s.partitions() == {"0", "1"})
    clash = open_stream(
        subscription, body={"partitions": [{"event_type": "order.created", "partition": "2"}]}
    )
    assert clash.status == 409
    stats = consumer_api.get(f"/api/subscriptions/{subscription}/stats").json()["items"][0][
        "partitions"
    ]
    assert {p["partition"]: p["assignment_type"] for p in stats} == {
        "0": "auto",
        "1": "auto",
        "2": "direct",
    }
    wrong = open_stream(
        subscription, body={"partitions": [{"event_type": "order.created", "partition": "7"}]}
    )
    assert wrong.status == 422


def test_deleting_the_subscription_or_resetting_cursors_closes_its_streams(
    consumer_api, open_stream
):
    subscription = setup_subscription(consumer_api)
    publish(consumer_api, "A-1", "A-2")
    stream = open_stream(subscription, batch_limit=1, batch_flush_timeout=1)
    stream.wait(lambda s: len(s.events) == 2)
    assert stream.commit(stream.last_cursor()).status_code == 204
    first = stream.data_batches()[0]["cursor"]
    reset = consumer_api.patch(
        f"/api/subscriptions/{subscription}/cursors",
        json={"items": [{**first, "offset": "BEGIN"}]},
    )
    assert reset.status_code == 204
    assert stream.wait_closed() == "cursor_reset"
    again = open_stream(subscription, batch_limit=1, batch_flush_timeout=1)
    again.wait(lambda s: len(s.events) == 2)
    assert numbers(again.events) == ["A-1", "A-2"]
    assert consumer_api.delete(f"/api/subscriptions/{subscription}").status_code == 204
    assert again.wait_closed() == "subscription_deleted"


def test_the_paths_around_django_check_what_django_checks(consumer_api, live_server, open_stream):
    subscription = setup_subscription(consumer_api)
    url = f"{live_server.url}/api/subscriptions/{subscription}/cursors"
    anonymous = httpx.post(url, content=b"x", headers={"Content-Type": "text/plain"})
    assert anonymous.status_code == 401  # the token first, as everywhere
    assert anonymous.headers["content-type"] == "application/problem+json"
    plain = consumer_api.post(url, content=b"{}", headers={"Content-Type": "text/plain"})
    assert plain.status_code == 415
    shouting = consumer_api.post(url, content=b"{}", headers={"Content-Type": "Application/JSON"})
    assert shouting.status_code == 422  # accepted as JSON, then refused for its content
    stranger_host = consumer_api.post(url, json={"items": []}, headers={"Host": "evil.example"})
    assert stranger_host.status_code == 400
    assert stranger_host.headers["content-type"] == "application/problem+json"
    # Publishing takes the same path around Django, with the same checks.
    publishing = consumer_api.post(
        "/api/event-types/order.created/events", json=[], headers={"Host": "evil.example"}
    )
    assert publishing.status_code == 400
    assert publishing.headers["content-type"] == "application/problem+json"
    missing = consumer_api.post("/api/event-types/order.nothing/events", json=[business_event()])
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
