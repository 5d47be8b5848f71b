"""The event-type half of the Nakadi contract, through Django's test client."""

from __future__ import annotations

import orjson
import pytest

from events.models import EventType
from tests.conftest import bearer
from tests.helpers import ORDER_SCHEMA, event_type_body

pytestmark = pytest.mark.django_db


def post(client, path, body, token):
    return client.post(path, orjson.dumps(body), content_type="application/json", **bearer(token))


def change_schema(client, token, schema, *, mode=None, to=None):
    """Create order.created (in compatibility `mode`, when given), then PUT it back with
    `schema` (switching to mode `to`, when given).
    """
    created = {"compatibility_mode": mode} if mode else {}
    changed = {"compatibility_mode": to} if to else created
    post(client, "/api/event-types", event_type_body(**created), token)
    body = event_type_body(json_schema=schema, **changed)
    return client.put(
        "/api/event-types/order.created",
        orjson.dumps(body),
        content_type="application/json",
        **bearer(token),
    )


def test_it_creates_an_event_type_and_returns_it(client, producer_token):
    response = post(client, "/api/event-types", event_type_body(partitions=3), producer_token)
    assert response.status_code == 201, response.content
    assert response["Location"] == "/api/event-types/order.created"
    body = response.json()
    assert body["schema"]["version"] == "1.0.0"
    assert body["number_of_partitions"] == 3
    assert body["options"]["retention_time"] == 2 * 24 * 3600 * 1000
    fetched = client.get("/api/event-types/order.created", **bearer(producer_token)).json()
    assert fetched == body


def test_it_takes_integers_written_with_a_fraction_of_zero(client, producer_token):
    body = event_type_body(partitions=3, options={"retention_time": 3_600_000.0})
    body["default_statistic"]["message_size"] = 100.0
    response = post(client, "/api/event-types", body, producer_token)
    assert response.status_code == 201, response.content
    stored = response.json()
    assert stored["number_of_partitions"] == 3
    assert stored["options"]["retention_time"] == 3_600_000
    assert stored["default_statistic"]["message_size"] == 100
    assert b"100.0" not in response.content


def test_it_refuses_a_duplicate_name_with_409(client, producer_token):
    post(client, "/api/event-types", event_type_body(), producer_token)
    response = post(client, "/api/event-types", event_type_body(), producer_token)
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"name": "9bad"}, "name"),
        ({"category": "weird"}, "category"),
        ({"partition_strategy": "hash"}, "partition_key_fields"),
        ({"schema": {"type": "json_schema", "schema": "{not json"}}, "not valid JSON"),
        ({"schema": {"type": "json_schema", "schema": '{"type": "nonsense"}'}}, "invalid"),
        ({"options": {"retention_time": 1}}, "retention_time"),
        # Mistyped enums and numbers are a 422, never a TypeError or OverflowError (500).
        ({"partition_strategy": ["hash"]}, "partition_strategy"),
        ({"compatibility_mode": {"a": 1}}, "compatibility_mode"),
        ({"category": [1]}, "category"),
        ({"cleanup_policy": [1]}, "cleanup_policy"),
        ({"name": "order.x\n"}, "name"),
        ({"options": {"retention_max_events": 2**63}}, "retention_max_events"),
        ({"options": {"retention_max_events": 10**12 + 1}}, "retention_max_events"),
        ({"options": {"retention_max_events": 0}}, "retention_max_events"),
        ({"options": {"retention_max_events": True}}, "retention_max_events"),
        ({"partition_strategy": "hash", "partition_key_fields": ["customer"]}, "customer"),
        (
            {
                "schema": {
                    "type": "json_schema",
                    "schema": '{"properties": {"metadata": {"type": "string"}}}',
                }
            },
            "reserved",
        ),
    ],
)
def test_it_refuses_an_invalid_event_type_with_422_and_stores_nothing(
    client, admin_token, change, detail
):
    response = post(client, "/api/event-types", event_type_body(**change), admin_token)
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert detail in response.json()["detail"]
    assert not EventType.objects.exists()


def test_it_needs_a_token(client, db):
    response = client.get("/api/event-types")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/api/event-types", HTTP_AUTHORIZATION="Bearer nope").status_code == 401


def test_it_refuses_a_client_without_the_grant(client, stranger_token):
    response = post(client, "/api/event-types", event_type_body(), stranger_token)
    assert response.status_code == 403
    assert "publish" in response.json()["detail"]


def test_it_adds_an_optional_property_as_a_minor_version(client, producer_token):
    schema = {
        **ORDER_SCHEMA,
        "properties": {**ORDER_SCHEMA["properties"], "note": {"type": "string"}},
    }
    response = change_schema(client, producer_token, schema)
    assert response.status_code == 200, response.content
    assert response.json()["schema"]["version"] == "1.1.0"
    versions = client.get("/api/event-types/order.created/schemas", **bearer(producer_token))
    assert [s["version"] for s in versions.json()["items"]] == ["1.1.0", "1.0.0"]


def test_it_refuses_removing_a_property_in_forward_mode(client, producer_token):
    schema = {"type": "object", "properties": {"order_number": {"type": "string"}}}
    response = change_schema(client, producer_token, schema)
    assert response.status_code == 422
    assert "properties/amount" in response.json()["detail"]
    assert EventType.objects.get().schema_version == "1.0.0"


def test_it_takes_any_change_in_none_mode_as_a_major_version(client, producer_token):
    schema = {"type": "object", "properties": {"order_number": {"type": "integer"}}}
    response = change_schema(client, producer_token, schema, mode="none")
    assert response.status_code == 200
    assert response.json()["schema"]["version"] == "2.0.0"


def test_a_mode_switch_is_judged_by_the_original_mode(client, producer_token):
    """none→forward: the change is judged as in none mode, so a MAJOR one is taken."""
    schema = {"type": "object", "properties": {"order_number": {"type": "string"}}}
    response = change_schema(client, producer_token, schema, mode="none", to="forward")
    assert response.status_code == 200, response.content
    assert response.json()["schema"]["version"] == "2.0.0"
    assert response.json()["compatibility_mode"] == "forward"


def test_switching_to_compatible_may_add_a_required_field(client, producer_token):
    schema = {**ORDER_SCHEMA, "required": ["order_number", "amount"]}
    response = change_schema(client, producer_token, schema, to="compatible")
    assert response.status_code == 200, response.content
    assert response.json()["schema"]["version"] == "1.1.0"
    assert response.json()["compatibility_mode"] == "compatible"


def test_switching_to_compatible_may_close_the_schema(client, producer_token):
    schema = {**ORDER_SCHEMA, "additionalProperties": False}
    response = change_schema(client, producer_token, schema, to="compatible")
    assert response.status_code == 200, response.content
    assert response.json()["schema"]["version"] == "2.0.0"


def test_switching_to_compatible_refuses_removing_a_property(client, producer_token):
    schema = {"type": "object", "properties": {"order_number": {"type": "string"}}}
    response = change_schema(client, producer_token, schema, to="compatible")
    assert response.status_code == 422
    assert "#/properties/amount" in response.json()["detail"]
    row = EventType.objects.get()
    assert (row.schema_version, row.compatibility_mode) == ("1.0.0", "forward")


NESTED_SCHEMA = {
    "type": "object",
    "properties": {
        "order_number": {"type": "string"},
        "customer": {"type": "object", "properties": {"id": {"type": "string"}}},
    },
}


def create_hashed_by(client, token, category, keys):
    """POST order.created of `category` with NESTED_SCHEMA, hash-partitioned by `keys`."""
    body = event_type_body(
        category=category,
        json_schema=NESTED_SCHEMA,
        partition_strategy="hash",
        partition_key_fields=keys,
    )
    return post(client, "/api/event-types", body, token)


@pytest.mark.parametrize(
    ("category", "keys"),
    [
        ("business", ["customer.id"]),
        ("business", ["order_number", "customer"]),
        ("data", ["customer.id"]),
    ],
)
def test_hash_keys_name_properties_of_the_user_schema(client, producer_token, category, keys):
    response = create_hashed_by(client, producer_token, category, keys)
    assert response.status_code == 201, response.content
    assert response.json()["partition_key_fields"] == keys


@pytest.mark.parametrize(
    ("category", "keys", "absent"),
    [
        ("business", ["customer.name"], "customer.name"),
        ("business", ["order_number.id"], "order_number.id"),
        # For data events the paths are relative to `data`, not to the envelope.
        ("data", ["data.customer.id"], "data.customer.id"),
        ("business", ["metadata.eid"], "metadata.eid"),
    ],
)
def test_a_hash_key_absent_from_the_schema_is_refused(
    client, producer_token, category, keys, absent
):
    response = create_hashed_by(client, producer_token, category, keys)
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert absent in response.json()["detail"]
    assert not EventType.objects.exists()


REFERENCING_SCHEMA = {
    "type": "object",
    "definitions": {
        "customer": {"type": "object", "properties": {"id": {"type": "string"}}},
        # A schema may refer to itself: the key check must not follow it forever.
        "node": {"type": "object", "properties": {"next": {"$ref": "#/definitions/node"}}},
    },
    "properties": {
        "customer": {"$ref": "#/definitions/customer"},
        "chain": {"$ref": "#/definitions/node"},
    },
}


@pytest.mark.parametrize(
    ("keys", "accepted"),
    [
        (["customer.id"], True),
        (["chain.next.next"], True),
        (["customer.name"], False),
        (["chain.previous"], False),
    ],
)
def test_hash_keys_are_found_through_local_references(client, producer_token, keys, accepted):
    body = event_type_body(
        json_schema=REFERENCING_SCHEMA, partition_strategy="hash", partition_key_fields=keys
    )
    response = post(client, "/api/event-types", body, producer_token)
    assert response.status_code == (201 if accepted else 422), response.content


@pytest.mark.parametrize(
    ("category", "keys"),
    [
        ("business", ["customer.id", "metadata.occurred_at"]),
        ("data", ["data.customer.id", "data_type", "metadata.eid"]),
        ("undefined", ["order_number"]),
    ],
)
def test_ordering_keys_are_paths_into_the_whole_event(client, producer_token, category, keys):
    body = event_type_body(category=category, json_schema=NESTED_SCHEMA, ordering_key_fields=keys)
    response = post(client, "/api/event-types", body, producer_token)
    assert response.status_code == 201, response.content
    assert response.json()["ordering_key_fields"] == keys


def test_ordering_keys_absent_from_the_schema_are_refused(client, producer_token):
    body = event_type_body(json_schema=NESTED_SCHEMA, ordering_key_fields=["customer.rank"])
    response = post(client, "/api/event-types", body, producer_token)
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == "ordering_key_fields ['customer.rank'] absent in schema."
    assert not EventType.objects.exists()
    body["ordering_key_fields"] = ["customer.id"]
    assert post(client, "/api/event-types", body, producer_token).status_code == 201


def test_it_deletes_an_event_type(client, admin_token):
    post(client, "/api/event-types", event_type_body(), admin_token)
    assert client.delete("/api/event-types/order.created", **bearer(admin_token)).status_code == 200
    response = client.get("/api/event-types/order.created", **bearer(admin_token))
    assert response.status_code == 404
    assert response.json()["detail"] == 'EventType "order.created" does not exist.'


def test_an_unknown_api_path_is_a_problem(client, db):
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(
    "change",
    [
        {"audience": "everyone"},
        {"authorization": "hello"},
        {"authorization": {"admins": [], "readers": [], "writers": []}},
    ],
)
def test_it_checks_audience_and_authorization(client, producer_token, change):
    response = post(client, "/api/event-types", event_type_body(**change), producer_token)
    assert response.status_code == 422


def test_a_client_without_the_grant_gets_403_before_any_validation(client, stranger_token):
    response = post(client, "/api/event-types", {"name": "order.created"}, stranger_token)
    assert response.status_code == 403


@pytest.mark.parametrize("partition", ["%C2%B2", "00", "-1", "x"])
def test_odd_partition_ids_are_404(client, producer_token, partition):
    post(client, "/api/event-types", event_type_body(partitions=2), producer_token)
    response = client.get(
        f"/api/event-types/order.created/partitions/{partition}", **bearer(producer_token)
    )
    assert response.status_code == 404


@pytest.mark.parametrize("kind", ["remote $ref", "unknown $schema"])
def test_the_api_refuses_a_remote_schema_with_422_without_fetching_it(
    client, admin_token, internal_service, kind
):
    url = internal_service.url
    schema = (
        {"type": "object", "properties": {"a": {"$ref": f"{url}/x"}}}
        if kind == "remote $ref"
        else {"$schema": f"{url}/meta-schema", "type": "object"}
    )
    response = client.post(
        "/api/event-types",
        orjson.dumps(event_type_body(json_schema=schema)),
        content_type="application/json",
        **bearer(admin_token),
    )
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert "not supported" in response.json()["detail"]
    assert internal_service.requests == []
    assert not EventType.objects.exists()
