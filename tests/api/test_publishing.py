"""Publishing: Nakadi's 200/207/422 outcomes, enrichment, partitioning, idempotency, limits."""

from __future__ import annotations

import uuid

import orjson
import pytest

from events.core.entries import EVENT
from events.store.connections import redis_client
from tests.conftest import bearer
from tests.helpers import business_event, event_type_body, log_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def order_type(client, producer_token):
    def create(**kwargs):
        body = event_type_body(**kwargs)
        response = client.post(
            "/api/event-types",
            orjson.dumps(body),
            content_type="application/json",
            **bearer(producer_token),
        )
        assert response.status_code == 201, response.content
        return body["name"]

    return create


def publish(client, token, events, name="order.created", **headers):
    return client.post(
        f"/api/event-types/{name}/events",
        orjson.dumps(events),
        content_type="application/json",
        **bearer(token),
        **headers,
    )


def stored(name="order.created", partition=0):
    entries = redis_client().xrange(log_key(name, partition))
    return [orjson.loads(fields[EVENT]) for _, fields in entries]


def test_it_stores_a_batch_in_order_and_enriches_metadata(client, producer_token, order_type):
    order_type()
    events = [business_event(f"A-{i}") for i in range(5)]
    response = publish(client, producer_token, events, HTTP_X_FLOW_ID="flow-42")
    assert response.status_code == 200
    assert response.content == b""
    kept = stored()
    assert [e["order_number"] for e in kept] == [f"A-{i}" for i in range(5)]
    metadata = kept[0]["metadata"]
    assert metadata["eid"] == events[0]["metadata"]["eid"]
    assert metadata["event_type"] == "order.created"
    assert metadata["partition"] == "0"
    assert metadata["version"] == "1.0.0"
    assert metadata["published_by"] == "shop"
    assert metadata["flow_id"] == "flow-42"
    assert metadata["received_at"].endswith("Z")


def test_a_retried_batch_is_stored_once(client, producer_token, order_type):
    order_type(partitions=4)
    events = [business_event(f"A-{i}") for i in range(20)]
    assert publish(client, producer_token, events).status_code == 200
    # The same batch again, as after a timeout, plus one new event.
    retry = [*events, business_event("A-new")]
    assert publish(client, producer_token, retry).status_code == 200
    total = sum(redis_client().xlen(log_key("order.created", p)) for p in range(4))
    assert total == 21


def test_a_duplicate_eid_within_a_batch_is_stored_once(client, producer_token, order_type):
    order_type()
    eid = str(uuid.uuid4())
    response = publish(client, producer_token, [business_event("A", eid), business_event("A", eid)])
    assert response.status_code == 200
    assert len(stored()) == 1


def test_an_invalid_event_aborts_the_whole_batch(client, producer_token, order_type):
    order_type()
    events = [business_event("A-1"), business_event("A-2", amount=-5), business_event("A-3")]
    response = publish(client, producer_token, events)
    assert response.status_code == 422
    items = response.json()
    assert [i["publishing_status"] for i in items] == ["aborted", "failed", "aborted"]
    assert items[1]["step"] == "validating"
    assert "amount" in items[1]["detail"]
    assert items[1]["eid"] == events[1]["metadata"]["eid"]
    assert stored() == []


@pytest.mark.parametrize(
    ("event", "detail"),
    [
        ({"order_number": "A"}, "metadata"),
        (
            {
                "order_number": "A",
                "metadata": {"eid": "nope", "occurred_at": "2026-11-21T10:00:00Z"},
            },
            "eid",
        ),
        (
            {
                "order_number": "A",
                "metadata": {"eid": str(uuid.uuid4()), "occurred_at": "yesterday"},
            },
            "occurred_at",
        ),
        ("not an object", "object"),
    ],
)
def test_it_refuses_events_without_valid_metadata(
    client, producer_token, order_type, event, detail
):
    order_type()
    response = publish(client, producer_token, [event])
    assert response.status_code == 422
    assert detail in response.json()[0]["detail"]


def test_hash_partitioning_keeps_one_key_on_one_partition(client, producer_token, order_type):
    order_type(partitions=4, partition_strategy="hash", partition_key_fields=["order_number"])
    events = [business_event(f"A-{i % 3}") for i in range(30)]
    assert publish(client, producer_token, events).status_code == 200
    partitions_of: dict[str, set[int]] = {}
    for p in range(4):
        for event in stored(partition=p):
            partitions_of.setdefault(event["order_number"], set()).add(p)
            assert event["metadata"]["partition"] == str(p)
    assert sorted(partitions_of) == ["A-0", "A-1", "A-2"]
    assert all(len(found) == 1 for found in partitions_of.values())


def test_a_missing_hash_key_fails_at_partitioning(client, producer_token, order_type):
    order_type(  # customer is declared, but optional: an event may lack it
        partitions=2,
        partition_strategy="hash",
        partition_key_fields=["customer"],
        json_schema={"type": "object", "properties": {"customer": {"type": "string"}}},
    )
    response = publish(client, producer_token, [business_event("A")])
    assert response.status_code == 422
    assert response.json()[0]["step"] == "partitioning"


def test_user_defined_partitioning_uses_the_given_partition(client, producer_token, order_type):
    order_type(partitions=3, partition_strategy="user_defined")
    event = business_event("A")
    event["metadata"]["partition"] = "2"
    assert publish(client, producer_token, [event]).status_code == 200
    assert len(stored(partition=2)) == 1
    event = business_event("B")
    event["metadata"]["partition"] = "7"
    assert publish(client, producer_token, [event]).status_code == 422


def test_data_change_events_need_their_envelope(client, producer_token, order_type):
    order_type(category="data")
    good = {
        "metadata": business_event()["metadata"],
        "data_op": "C",
        "data_type": "order",
        "data": {"order_number": "A"},
    }
    assert publish(client, producer_token, [good]).status_code == 200
    bad = {**good, "data_op": "X"}
    assert publish(client, producer_token, [bad]).status_code == 422


def test_undefined_events_are_stored_as_sent(client, producer_token, order_type):
    order_type(category="undefined")
    assert publish(client, producer_token, [{"order_number": "A"}]).status_code == 200
    assert stored() == [{"order_number": "A"}]


def test_compatible_mode_refuses_undeclared_fields(client, producer_token, order_type):
    order_type(compatibility_mode="compatible")
    response = publish(client, producer_token, [business_event("A", surprise=True)])
    assert response.status_code == 422


def test_an_event_over_the_size_limit_is_413_and_nothing_is_stored(
    client, producer_token, order_type, settings
):
    settings.MAX_EVENT_BYTES = 2000
    order_type()
    events = [business_event("A"), business_event("B" * 3000)]
    response = publish(client, producer_token, events)
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"
    assert "Event 1" in response.json()["detail"]
    assert stored() == []


def test_a_request_over_the_size_limit_is_413(client, producer_token, order_type, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    order_type()
    response = publish(client, producer_token, [business_event("A" * 2000)])
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"[{", "application/json", 400),
        (b'{"not": "a list"}', "application/json", 400),
        (b"[]", "text/plain", 415),
    ],
)
def test_malformed_requests_are_refused_clearly(
    client, producer_token, order_type, body, content_type, status
):
    order_type()
    response = client.post(
        "/api/event-types/order.created/events",
        body,
        content_type=content_type,
        **bearer(producer_token),
    )
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert stored() == []


def test_publishing_needs_the_publish_grant(client, producer_token, stranger_token, order_type):
    order_type()
    response = publish(client, stranger_token, [business_event()])
    assert response.status_code == 403
    assert stored() == []


def test_publishing_to_an_unknown_type_is_404(client, producer_token):
    assert publish(client, producer_token, [business_event()], name="nope").status_code == 404


def test_a_failed_partition_write_is_207_and_the_rest_is_stored(client, producer_token, order_type):
    order_type(partitions=2, partition_strategy="user_defined")
    # Make partition 1's stream key a plain string: XADD on it fails, partition 0 still works.
    redis_client().set(log_key("order.created", 1), "not a stream")
    events = [business_event("A"), business_event("B")]
    events[0]["metadata"]["partition"] = "0"
    events[1]["metadata"]["partition"] = "1"
    response = publish(client, producer_token, events)
    assert response.status_code == 207
    items = response.json()
    assert [(i["publishing_status"], i["step"]) for i in items] == [
        ("submitted", "none"),
        ("failed", "publishing"),
    ]
    assert [e["order_number"] for e in stored(partition=0)] == ["A"]
    # The failed event left no de-duplication marker behind: once the partition works
    # again, the producer's retry of the whole batch stores it, and A not twice.
    redis_client().delete(log_key("order.created", 1))
    assert publish(client, producer_token, events).status_code == 200
    assert [e["order_number"] for e in stored(partition=0)] == ["A"]
    assert [e["order_number"] for e in stored(partition=1)] == ["B"]


def test_length_retention_trims_old_events(client, producer_token, order_type):
    order_type(options={"retention_time": 3_600_000, "retention_max_events": 10})
    for start in range(0, 1000, 100):
        batch = [business_event(f"A-{i}") for i in range(start, start + 100)]
        assert publish(client, producer_token, batch).status_code == 200
    length = redis_client().xlen(log_key("order.created", 0))
    # Approximate trimming keeps whole radix-tree nodes (100 entries by default).
    assert length < 300
    assert stored()[-1]["order_number"] == "A-999"


def test_partitions_report_offsets(client, producer_token, order_type):
    order_type(partitions=2, partition_strategy="user_defined")
    event = business_event("A")
    event["metadata"]["partition"] = "1"
    publish(client, producer_token, [event])
    response = client.get("/api/event-types/order.created/partitions", **bearer(producer_token))
    assert response.status_code == 200
    empty, used = response.json()
    assert empty == {
        "partition": "0",
        "oldest_available_offset": "0-1",
        "newest_available_offset": "BEGIN",
        "length": 0,
    }
    [(entry_id, _)] = redis_client().xrange(log_key("order.created", 1))
    assert used["oldest_available_offset"] == used["newest_available_offset"] == entry_id.decode()
    single = client.get("/api/event-types/order.created/partitions/1", **bearer(producer_token))
    assert single.json() == used
    missing = client.get("/api/event-types/order.created/partitions/5", **bearer(producer_token))
    assert missing.status_code == 404


def test_metadata_the_server_sets_may_not_be_sent(client, producer_token, order_type):
    order_type()
    event = business_event("A")
    event["metadata"]["received_at"] = "2026-11-21T10:00:00Z"
    response = publish(client, producer_token, [event])
    assert response.status_code == 422
    assert "set by the server" in response.json()[0]["detail"]


def test_time_retention_trims_events_older_than_the_retention(client, producer_token, order_type):
    order_type(options={"retention_time": 60_000})
    key = log_key("order.created", 0)
    for i in range(1, 301):  # entries stamped in 1970: far past any retention
        redis_client().xadd(key, {EVENT: b"{}"}, id=f"{i}-0")
    assert publish(client, producer_token, [business_event("fresh")]).status_code == 200
    remaining = redis_client().xrange(key)
    # Approximate trimming drops whole stream nodes: most old entries go, the new one stays.
    assert len(remaining) < 150
    assert orjson.loads(remaining[-1][1][EVENT])["order_number"] == "fresh"


def test_a_batch_with_invalid_and_unplaceable_events_names_both(client, producer_token, order_type):
    order_type(partitions=2, partition_strategy="user_defined")
    fine, invalid, unplaceable = (
        business_event("A"),
        business_event("B", amount=-1),
        business_event("C"),
    )
    fine["metadata"]["partition"] = invalid["metadata"]["partition"] = "0"
    unplaceable["metadata"]["partition"] = "9"
    items = publish(client, producer_token, [fine, invalid, unplaceable]).json()
    assert [(i["publishing_status"], i["step"]) for i in items] == [
        ("aborted", "validating"),
        ("failed", "validating"),
        ("failed", "partitioning"),
    ]


@pytest.mark.django_db(transaction=True)  # the delete must commit, as it does in production
def test_a_type_deleted_and_created_again_stores_its_events_anew(
    client, producer_token, admin_token, order_type
):
    order_type()
    event = business_event("A")
    assert publish(client, producer_token, [event]).status_code == 200
    assert client.delete("/api/event-types/order.created", **bearer(admin_token)).status_code == 200
    order_type()
    # Same eid, new type of the same name: the old type's de-duplication marker must not
    # swallow it (markers outlive a delete).
    assert publish(client, producer_token, [event]).status_code == 200
    assert [e["order_number"] for e in stored()] == ["A"]


@pytest.mark.parametrize(
    ("metadata", "where"),
    [
        ({"occurred_at": "2026-99-99T99:99:99Z"}, "/metadata/occurred_at"),
        ({"flow_id": 5}, "/metadata/flow_id"),
        ({"junk": True}, "/metadata"),
        ({"parent_eids": "nope"}, "/metadata/parent_eids"),
        ({"eid": "x" * 5000}, "/metadata/eid"),
    ],
)
def test_metadata_is_checked_as_nakadis_schema_says(
    client, producer_token, order_type, metadata, where
):
    order_type()
    event = business_event("A")
    event["metadata"].update(metadata)
    response = publish(client, producer_token, [event])
    assert response.status_code == 422
    assert response.json()[0]["detail"].endswith(f"(at {where})")
    assert stored() == []


def test_business_events_pass_a_strict_schema_without_properties(
    client, producer_token, order_type
):
    order_type(compatibility_mode="compatible", json_schema={"type": "object"})
    assert publish(client, producer_token, [business_event()]).status_code == 422  # undeclared
    event = {"metadata": business_event()["metadata"]}
    assert publish(client, producer_token, [event]).status_code == 200


def test_hash_keys_of_data_events_are_read_from_data(client, producer_token, order_type):
    order_type(
        category="data",
        partitions=4,
        partition_strategy="hash",
        partition_key_fields=["order_number"],
    )
    events = [
        {
            "metadata": business_event()["metadata"],
            "data_op": "U",
            "data_type": "order",
            "data": {"order_number": f"A-{i % 2}"},
        }
        for i in range(10)
    ]
    assert publish(client, producer_token, events).status_code == 200
    placed: dict[str, set[int]] = {}
    for p in range(4):
        for event in stored(partition=p):
            placed.setdefault(event["data"]["order_number"], set()).add(p)
    assert sorted(placed) == ["A-0", "A-1"]
    assert all(len(partitions) == 1 for partitions in placed.values())


def test_a_data_op_that_is_not_a_string_is_a_422_not_a_500(client, producer_token, order_type):
    order_type(category="data")
    event = {
        "metadata": business_event()["metadata"],
        "data_op": ["C"],
        "data_type": "o",
        "data": {"order_number": "A"},
    }
    response = publish(client, producer_token, [event])
    assert response.status_code == 422
    assert "data_op" in response.json()[0]["detail"]


def test_publishing_survives_redis_forgetting_its_scripts(client, producer_token, order_type):
    order_type(partitions=2)
    assert publish(client, producer_token, [business_event("A")]).status_code == 200
    redis_client().script_flush()  # as after a Redis restart
    events = [business_event(f"B-{i}") for i in range(10)]
    assert publish(client, producer_token, events).status_code == 200
    assert sum(len(stored(partition=p)) for p in range(2)) == 11
