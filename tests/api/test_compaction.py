"""Compacted event types through the API: Nakadi's cleanup policies and their rules, the
compaction key publishing requires, and what readers and subscriptions see of a compacted
log, over a real server.
"""

from __future__ import annotations

import orjson
import pytest

from events import jobs
from events.models import EventType
from events.store.connections import redis_client
from events.store.keys import log_key
from tests.conftest import bearer
from tests.helpers import business_event, event_type_body

pytestmark = pytest.mark.django_db(transaction=True)

PATH = "/api/event-types/order.created"


def keyed(number: str, key: str | None) -> dict:
    event = business_event(number)
    if key is not None:
        event["metadata"]["partition_compaction_key"] = key
    return event


def post(client, path, body, token):
    return client.post(path, orjson.dumps(body), content_type="application/json", **bearer(token))


def put(client, body, token):
    return client.put(PATH, orjson.dumps(body), content_type="application/json", **bearer(token))


def log() -> str:
    return log_key(EventType.objects.get(name="order.created").store_id, 0)


def stored() -> list[dict]:
    return [orjson.loads(f[b"e"]) for _, f in redis_client().xrange(log())]


@pytest.mark.parametrize("policy", ["delete", "compact", "compact_and_delete"])
def test_each_cleanup_policy_is_created_and_returned_as_stored(client, producer_token, policy):
    response = post(
        client, "/api/event-types", event_type_body(cleanup_policy=policy), producer_token
    )
    assert response.status_code == 201, response.content
    assert response.json()["cleanup_policy"] == policy
    fetched = client.get(PATH, **bearer(producer_token)).json()
    assert fetched["cleanup_policy"] == policy
    assert EventType.objects.get().cleanup_policy == policy


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (event_type_body(cleanup_policy="sometimes"), "cleanup_policy"),
        (
            event_type_body(category="undefined", cleanup_policy="compact"),
            "not available for 'undefined'",
        ),
        (
            event_type_body(category="undefined", cleanup_policy="compact_and_delete"),
            "not available for 'undefined'",
        ),
        (
            event_type_body(cleanup_policy="compact", options={"retention_max_events": 10}),
            "retention_max_events",
        ),
    ],
)
def test_a_cleanup_policy_nakadi_refuses_gets_422_and_nothing_is_stored(
    client, producer_token, body, detail
):
    response = post(client, "/api/event-types", body, producer_token)
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert detail in response.json()["detail"]
    assert not EventType.objects.exists()


@pytest.mark.parametrize(
    ("before", "after", "status"),
    [
        ("delete", "delete", 200),
        ("compact", "compact", 200),
        ("delete", "compact_and_delete", 200),  # the one change Nakadi allows
        ("delete", "compact", 422),
        ("compact", "delete", 422),
        ("compact", "compact_and_delete", 422),
        ("compact_and_delete", "delete", 422),
        ("compact_and_delete", "compact", 422),
    ],
)
def test_a_cleanup_policy_changes_only_as_nakadi_allows(
    client, producer_token, before, after, status
):
    post(client, "/api/event-types", event_type_body(cleanup_policy=before), producer_token)
    response = put(client, event_type_body(cleanup_policy=after), producer_token)
    assert response.status_code == status, response.content
    if status == 422:
        detail = response.json()["detail"]
        assert detail == (
            f"Invalid cleanup_policy change: {before.upper()} cannot be changed to {after.upper()}"
        )
    expected = after if status == 200 else before
    assert client.get(PATH, **bearer(producer_token)).json()["cleanup_policy"] == expected


@pytest.mark.parametrize("policy", ["compact", "compact_and_delete"])
def test_publishing_to_a_compacted_type_without_the_key_is_refused_whole(
    client, producer_token, policy
):
    post(client, "/api/event-types", event_type_body(cleanup_policy=policy), producer_token)
    batch = [keyed("A-1", "a"), keyed("A-2", None), keyed("A-3", "")]
    response = post(client, f"{PATH}/events", batch, producer_token)

    assert response.status_code == 422, response.content
    items = response.json()
    assert [i["publishing_status"] for i in items] == ["aborted", "failed", "failed"]
    assert "partition_compaction_key" in items[1]["detail"]
    assert stored() == []


def test_a_type_that_turns_compact_and_delete_requires_the_key_from_then_on(client, producer_token):
    post(client, "/api/event-types", event_type_body(), producer_token)
    # A delete type takes the key (and ignores it), so producers may send it before.
    assert post(client, f"{PATH}/events", [keyed("A-1", "a")], producer_token).status_code == 200
    assert post(client, f"{PATH}/events", [keyed("A-2", None)], producer_token).status_code == 200

    put(client, event_type_body(cleanup_policy="compact_and_delete"), producer_token)

    assert post(client, f"{PATH}/events", [keyed("A-3", None)], producer_token).status_code == 422
    assert post(client, f"{PATH}/events", [keyed("A-4", "a")], producer_token).status_code == 200
    assert [e["order_number"] for e in stored()] == ["A-1", "A-2", "A-4"]


def create_compacted(api, policy: str = "compact") -> None:
    response = api.post("/api/event-types", json=event_type_body(cleanup_policy=policy))
    assert response.status_code == 201, response.text


def publish(api, *pairs: tuple[str, str]) -> None:
    events = [keyed(number, key) for number, key in pairs]
    response = api.post(f"{PATH}/events", json=events)
    assert response.status_code == 200, response.text


def compact_now(settings) -> dict:
    """The retention job, with no minimum age: everything superseded goes."""
    settings.COMPACTION_MIN_AGE_MS = 0
    return jobs.retention()


def test_a_reader_from_begin_gets_the_latest_event_of_every_key(
    consumer_api, live_server, consumer_token, settings
):
    from tests.readers import ReaderClient

    create_compacted(consumer_api)
    publish(consumer_api, ("A-1", "a"), ("B-1", "b"), ("A-2", "a"))
    publish(consumer_api, ("C-1", "c"), ("A-3", "a"), ("B-2", "b"))
    [first, *_] = [entry_id.decode() for entry_id, _ in redis_client().xrange(log())]
    assert compact_now(settings) == {"trimmed": 0, "compacted": 3}

    readers = [
        ReaderClient(live_server.url, f"{PATH}/events", consumer_token, read_from="begin"),
        # Nakadi's cursors may point before or into compaction's holes: no 412.
        ReaderClient(
            live_server.url,
            f"{PATH}/events",
            consumer_token,
            sse=False,
            headers={"X-Nakadi-Cursors": '[{"partition": "0", "offset": "BEGIN"}]'},
        ),
        ReaderClient(
            live_server.url,
            f"{PATH}/events",
            consumer_token,
            sse=False,
            headers={"X-Nakadi-Cursors": f'[{{"partition": "0", "offset": "{first}"}}]'},
        ),
    ]
    try:
        for reader in readers:
            assert reader.status == 200
            events = reader.wait_events(3)
            assert [e["order_number"] for e in events] == ["C-1", "A-3", "B-2"]
        assert readers[0].of("reset") == []  # compaction's holes are no loss: no reset
    finally:
        for reader in readers:
            reader.close()


def test_a_subscription_that_keeps_up_sees_every_event_and_commits_after_compaction(
    consumer_api, live_server, consumer_token, settings
):
    from tests.streams import Stream

    create_compacted(consumer_api, "compact_and_delete")
    body = {"owning_application": "shop", "event_types": ["order.created"], "read_from": "begin"}
    subscription = consumer_api.post("/api/subscriptions", json=body).json()["id"]
    stream = Stream(live_server.url, consumer_token, subscription, batch_flush_timeout=1)
    try:
        publish(consumer_api, ("A-1", "a"), ("A-2", "a"), ("B-1", "b"), ("A-3", "a"))
        stream.wait(lambda s: len(s.events) == 4)
        assert [e["order_number"] for e in stream.events] == ["A-1", "A-2", "B-1", "A-3"]

        assert compact_now(settings)["compacted"] == 2  # delivered, uncommitted
        stats = consumer_api.get(f"/api/subscriptions/{subscription}/stats")
        assert stats.status_code == 200, stats.text  # Redis's lag is unknown past an XDEL
        stream.commit_all()
        publish(consumer_api, ("B-2", "b"))
        stream.wait(lambda s: len(s.events) == 5)
        assert stream.events[-1]["order_number"] == "B-2"
    finally:
        stream.close()
