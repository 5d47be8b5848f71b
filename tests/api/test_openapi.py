"""The OpenAPI document: well formed, complete, and true to what the real views answer."""

from __future__ import annotations

import gc
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
import pytest
import yaml
from django.test import override_settings
from django.urls import URLResolver, get_resolver
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from events.api.openapi import OPENAPI_PATH
from events.models import DeadLetter, EventType, Subscription
from tests.conftest import LiveServer, bearer
from tests.helpers import business_event, event_type_body

SPEC: dict[str, Any] = yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8"))
SPEC_URI = "urn:streamsite:openapi"
REGISTRY: Registry[Any] = Registry().with_resource(
    SPEC_URI, Resource.from_contents(SPEC, default_specification=DRAFT202012)
)
METHODS = ("get", "put", "post", "delete", "patch")
# Values for path parameters when a test needs a concrete URL.
SAMPLES = {
    "name": "order.created",
    "version": "latest",
    "partition": "0",
    "subscription_id": "00000000-0000-4000-8000-000000000000",
    "dead_letter_id": "1",
}

FORMATS = FormatChecker()


DATE_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


@FORMATS.checks("date-time")
def _is_date_time(value: object) -> bool:
    # jsonschema checks date-time only with an optional package; RFC 3339 is a regex here.
    return not isinstance(value, str) or bool(DATE_TIME_RE.match(value))


def pointer(*parts: str) -> str:
    """A JSON pointer (RFC 6901) to `parts` inside the document."""
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def lookup(location: str) -> Any:
    return REGISTRY.resolver().lookup(f"{SPEC_URI}#{location}").contents


def deref(node: dict[str, Any], location: str) -> tuple[dict[str, Any], str]:
    """`node` and its location, or what its `$ref` points at and where that is."""
    while "$ref" in node:
        location = node["$ref"].removeprefix("#")
        node = lookup(location)
    return node, location


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in SPEC["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def django_routes() -> set[str]:
    """Every /api/ and /health/ route Django serves, as an OpenAPI path template."""

    def walk(patterns: list[Any], prefix: str) -> Iterator[str]:
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, route)
            else:
                yield route

    routes = walk(get_resolver().url_patterns, "")
    return {
        "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
        for route in routes
        if route.startswith(("api/", "health/"))
    }


def channels_routes() -> dict[str, set[str]]:
    """The routes that Channels consumers serve in front of Django (`streamsite/asgi.py`),
    by protocol (`http`, `websocket`), as OpenAPI path templates.
    """
    threshold = gc.get_threshold()
    from streamsite import asgi  # it tunes the collector for a server process: undo that

    gc.unfreeze()
    gc.set_threshold(*threshold)
    return {
        protocol: {
            "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(route.pattern))
            for route in router.routes
            if str(route.pattern)  # the catch-all that hands the rest to Django
        }
        for protocol, router in (
            ("http", asgi.http_routes),  # readers are matched first, on the same paths
            ("websocket", asgi.application.applications["websocket"]),
        )
    }


# Streams (subscriptions' and readers'); publishing shares its path with a reader.
STREAM_PATHS = {path for path in SPEC["paths"] if path.endswith("/events")}


def sample_path(template: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda match: SAMPLES[match[1]], template)


def documents(content_type: str, body: bytes) -> list[Any]:
    """The JSON documents of a body: one, or one a line for a JSON stream (NDJSON)."""
    if content_type == "application/x-json-stream":
        return [orjson.loads(line) for line in body.splitlines() if line.strip()]
    if content_type.endswith("json"):
        return [orjson.loads(body)]
    return []


def assert_matches_spec(
    method: str, path_template: str, response: Any, body: bytes | None = None
) -> None:
    """Fail unless the document lists `response`'s status for the operation, its required
    headers are present, and its body matches the schema for its content type (each line's,
    for a JSON stream). `response` is Django's or httpx's; `body` is the part of a streamed
    body that was read, when not all of it was.
    """
    body = response.content if body is None else body
    location = pointer("paths", path_template, method.lower())
    operation = lookup(location)
    status = str(response.status_code)
    answer = f"{method.upper()} {path_template} answered {status}: {body[:300]!r}"
    assert status in operation["responses"], f"undocumented status; {answer}"
    documented, location = deref(
        operation["responses"][status], location + pointer("responses", status)
    )
    for name, header in documented.get("headers", {}).items():
        assert not header.get("required") or name in response.headers, f"no {name}; {answer}"
    content = documented.get("content")
    if not content:
        assert body == b"", f"the body should be empty; {answer}"
        return
    content_type = response.headers["Content-Type"].split(";")[0].strip()
    assert content_type in content, f"undocumented content type {content_type}; {answer}"
    where = f"{location}{pointer('content', content_type, 'schema')}"
    for document in documents(content_type, body):
        assert_valid(document, where, answer)


def assert_valid(document: Any, location: str, answer: str = "") -> None:
    """Fail unless `document` matches the schema at `location` in the document."""
    schema = {"$ref": f"{SPEC_URI}#{location}"}
    validator = Draft202012Validator(schema, registry=REGISTRY, format_checker=FORMATS)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert not errors, f"{document!r} does not match the document: {errors}; {answer}"


# -- the document itself ---------------------------------------------------------------


@pytest.mark.no_redis
def test_it_is_an_openapi_3_1_document() -> None:
    assert re.fullmatch(r"3\.1\.\d+", SPEC["openapi"])
    assert isinstance(SPEC["info"]["title"], str)
    assert isinstance(SPEC["info"]["version"], str)
    assert "Nakadi" in SPEC["info"]["description"]
    assert "<ms>-<seq>" in SPEC["info"]["description"]
    assert all(path.startswith("/") for path in SPEC["paths"])
    assert set(SPEC) <= {
        "openapi",
        "info",
        "jsonSchemaDialect",
        "servers",
        "paths",
        "webhooks",
        "components",
        "security",
        "tags",
        "externalDocs",
    }


@pytest.mark.no_redis
def test_it_gives_every_operation_an_id_a_summary_a_tag_and_described_responses() -> None:
    tags = {tag["name"] for tag in SPEC["tags"]}
    ids = [operation["operationId"] for _, _, operation in operations()]
    assert len(ids) == len(set(ids))
    for path, method, operation in operations():
        where = f"{method.upper()} {path}"
        assert operation["summary"], where
        assert operation["description"], where
        assert operation["tags"], where
        assert set(operation["tags"]) <= tags, where
        assert operation["responses"], where
        for status, response in operation["responses"].items():
            assert re.fullmatch(r"[1-5][0-9][0-9]|default", status), where
            assert deref(response, "")[0]["description"], f"{where} {status}"


@pytest.mark.no_redis
def test_it_declares_every_path_parameter_as_required() -> None:
    for path, method, operation in operations():
        declared = [
            deref(p, "")[0]
            for p in SPEC["paths"][path].get("parameters", []) + operation.get("parameters", [])
        ]
        in_path = {p["name"] for p in declared if p["in"] == "path"}
        assert in_path == set(re.findall(r"\{(\w+)\}", path)), f"{method.upper()} {path}"
        assert all(p["required"] for p in declared if p["in"] == "path")
        assert all(p["in"] in ("query", "header", "path", "cookie") for p in declared)


def nulls(node: Any, where: str = "") -> Iterator[str]:
    """Where a mapping of the document holds null, outside `enum`, `const` and `default`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if value is None and key not in ("enum", "const", "default", "example"):
                yield f"{where}/{key}"
            yield from nulls(value, f"{where}/{key}")
    elif isinstance(node, list) and not where.endswith(("/enum", "/examples")):
        for index, value in enumerate(node):
            yield from nulls(value, f"{where}/{index}")


@pytest.mark.no_redis
def test_it_holds_no_null_that_yaml_made_by_mistake() -> None:
    """In a flow mapping (`{description: a, b}`) a comma splits a text into a key of its own
    whose value is null: quote such texts.
    """
    assert list(nulls(SPEC)) == []


@pytest.mark.no_redis
def test_it_resolves_every_ref() -> None:
    found = list(refs(SPEC))
    assert found
    for ref in found:
        assert ref.startswith("#/"), ref
        try:
            lookup(ref.removeprefix("#"))
        except Unresolvable:
            pytest.fail(f"{ref} does not resolve")


@pytest.mark.no_redis
def test_it_holds_only_valid_json_schema_2020_12() -> None:
    for name, schema in SPEC["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
        assert schema.get("description") or name in ("Link", "AuthorizationAttributes"), name
    for _, _, operation in operations():
        for response in operation["responses"].values():
            for media in deref(response, "")[0].get("content", {}).values():
                Draft202012Validator.check_schema(media["schema"])
        for media in operation.get("requestBody", {}).get("content", {}).values():
            Draft202012Validator.check_schema(media["schema"])


@pytest.mark.no_redis
def test_it_uses_only_the_bearer_security_scheme() -> None:
    assert SPEC["components"]["securitySchemes"] == {
        "bearerAuth": {
            **SPEC["components"]["securitySchemes"]["bearerAuth"],
            "type": "http",
            "scheme": "bearer",
        }
    }
    assert SPEC["security"] == [{"bearerAuth": []}]
    public = {path for path, _, operation in operations() if operation.get("security") == []}
    assert public == {"/api/openapi.json", "/api/openapi.yaml", "/health/live", "/health/ready"}


@pytest.mark.no_redis
def test_it_documents_exactly_the_routes_the_server_serves() -> None:
    routes = django_routes()
    assert "/api/event-types/{name}/events" in routes
    streams = {path for path in channels_routes()["http"] if path.startswith(("/api/", "/health/"))}
    hot = {
        "/api/subscriptions/{subscription_id}/cursors",
        "/api/subscriptions/{subscription_id}/acks",
        "/api/event-types/{name}/events",
    }
    assert streams == STREAM_PATHS | hot
    assert {
        "/api/subscriptions/{subscription_id}/events",
        "/api/event-types/{name}/events",
        "/api/events",
    } == STREAM_PATHS
    # Publishing and committing skip Django's request handling; Django still has the views
    # (and serves the paths' other methods).
    assert hot <= routes
    assert set(SPEC["paths"]) == routes | streams


@pytest.mark.no_redis
def test_it_describes_every_websocket_route() -> None:
    """OpenAPI cannot model a WebSocket: each one is described in the text instead."""
    sockets = channels_routes()["websocket"]
    assert sockets == {"/ws/subscriptions/{subscription_id}"}
    for path in sockets:
        assert path in SPEC["info"]["description"]
        assert any(path in operation["description"] for _, _, operation in operations())


# Methods no path declares: each must get 405 as well (Django's CSRF check, or Twisted,
# must not answer them first).
OTHER_METHODS = ("options", "trace", "query")


@pytest.mark.django_db
@pytest.mark.parametrize("path", sorted(p for p in SPEC["paths"] if p not in STREAM_PATHS))
def test_it_documents_exactly_the_methods_each_path_accepts(client, path):
    documented = {method for method in METHODS if method in SPEC["paths"][path]}
    for method in METHODS + OTHER_METHODS:
        response = client.generic(method.upper(), sample_path(path))
        if method in documented:
            assert response.status_code != 405, f"{method.upper()} {path}"
        else:
            assert response.status_code == 405, f"{method.upper()} {path}"
            assert response["Content-Type"] == "application/problem+json", path
            allowed = {m.strip().lower() for m in response["Allow"].split(",")} - {"head"}
            assert allowed == documented, path


@pytest.mark.parametrize("path", sorted(STREAM_PATHS))
def test_it_documents_exactly_the_methods_each_stream_path_accepts(live_server, path):
    """Streams are Channels consumers, not Django views: ask the real server."""
    documented = {method for method in METHODS if method in SPEC["paths"][path]}
    with live_server.client() as http:
        for method in METHODS:
            response = http.request(method.upper(), sample_path(path))
            if method in documented:
                assert response.status_code == 401, f"{method.upper()} {path}"
            else:
                assert response.status_code == 405, f"{method.upper()} {path}"
                allowed = {m.strip().lower() for m in response.headers["Allow"].split(",")}
                assert allowed == documented, path


# -- real responses against the document -----------------------------------------------

ET = "/api/event-types"
ORDER = "/api/event-types/order.created"


def call(
    client,
    method: str,
    path: str,
    token: str | None = None,
    body: Any = None,
    content_type: str = "application/json",
    **extra: Any,
):
    data = body if isinstance(body, bytes | str) or body is None else orjson.dumps(body)
    headers = bearer(token) if token else {}
    return client.generic(
        method.upper(), path, data or b"", content_type=content_type, **headers, **extra
    )


@pytest.fixture
def order_type(client, producer_token: str) -> dict[str, Any]:
    """order.created with two partitions, created through the API by the shop."""
    response = call(client, "post", ET, producer_token, event_type_body(partitions=2))
    assert response.status_code == 201, response.content
    return response.json()


def test_it_describes_an_event_type_s_whole_life(client, producer_token):
    created = call(client, "post", ET, producer_token, event_type_body(partitions=2))
    assert created.status_code == 201
    assert_matches_spec("post", "/api/event-types", created)
    listed = call(client, "get", f"{ET}?owning_application=shop", producer_token)
    assert [row["name"] for row in listed.json()] == ["order.created"]
    assert_matches_spec("get", "/api/event-types", listed)
    fetched = call(client, "get", ORDER, producer_token)
    assert_matches_spec("get", "/api/event-types/{name}", fetched)
    body = event_type_body(partitions=2, options={"retention_max_events": 1000})
    updated = call(client, "put", ORDER, producer_token, body)
    assert updated.json()["options"]["retention_max_events"] == 1000
    assert_matches_spec("put", "/api/event-types/{name}", updated)
    deleted = call(client, "delete", ORDER, producer_token)
    assert deleted.status_code == 200
    assert_matches_spec("delete", "/api/event-types/{name}", deleted)


def test_it_describes_a_subscription_s_whole_life(client, admin_token, order_type):
    body = {
        "owning_application": "billing",
        "event_types": ["order.created"],
        "read_from": "cursors",
        "initial_cursors": [
            {"event_type": "order.created", "partition": p, "offset": "BEGIN"} for p in "01"
        ],
    }
    created = call(client, "post", "/api/subscriptions", admin_token, body)
    assert created.status_code == 201
    assert_matches_spec("post", "/api/subscriptions", created)
    found = call(client, "post", "/api/subscriptions", admin_token, body)
    assert found.status_code == 200
    assert_matches_spec("post", "/api/subscriptions", found)
    path = f"/api/subscriptions/{created.json()['id']}"
    assert_matches_spec(
        "get", "/api/subscriptions/{subscription_id}", call(client, "get", path, admin_token)
    )
    listed = call(client, "get", "/api/subscriptions?limit=1", admin_token)
    assert_matches_spec("get", "/api/subscriptions", listed)
    refused = call(client, "delete", ORDER, admin_token)
    assert refused.status_code == 409
    assert_matches_spec("delete", "/api/event-types/{name}", refused)
    deleted = call(client, "delete", path, admin_token)
    assert deleted.status_code == 204
    assert_matches_spec("delete", "/api/subscriptions/{subscription_id}", deleted)
    invalid = call(client, "post", "/api/subscriptions", admin_token, {**body, "event_types": []})
    assert_matches_spec("post", "/api/subscriptions", invalid)


SUBSCRIPTION = "/api/subscriptions/{subscription_id}"


def subscribe(client, token: str) -> str:
    """A subscription to order.created from the beginning; its URL."""
    body = {"owning_application": "billing", "event_types": ["order.created"], "read_from": "begin"}
    created = call(client, "post", "/api/subscriptions", token, body)
    assert created.status_code == 201, created.content
    return f"/api/subscriptions/{created.json()['id']}"


def test_it_describes_a_subscription_s_cursors_and_stats(
    client, admin_token, stranger_token, order_type
):
    path = subscribe(client, admin_token)
    published = call(client, "post", f"{ORDER}/events", admin_token, [business_event("A-1")])
    assert published.status_code == 200
    cursors = call(client, "get", f"{path}/cursors", admin_token)
    assert [(c["partition"], c["offset"]) for c in cursors.json()["items"]] == [
        ("0", "BEGIN"),
        ("1", "BEGIN"),
    ]
    assert_matches_spec("get", f"{SUBSCRIPTION}/cursors", cursors)
    stats = call(client, "get", f"{path}/stats?show_time_lag=true", admin_token)
    (item,) = stats.json()["items"]
    assert sum(p["unconsumed_events"] for p in item["partitions"]) == 1
    assert all("consumer_lag_seconds" in p for p in item["partitions"])
    assert_matches_spec("get", f"{SUBSCRIPTION}/stats", stats)
    without_lag = call(client, "get", f"{path}/stats", admin_token)
    assert not any(
        "consumer_lag_seconds" in p for p in without_lag.json()["items"][0]["partitions"]
    )
    assert_matches_spec("get", f"{SUBSCRIPTION}/stats", without_lag)
    not_a_boolean = call(client, "get", f"{path}/stats?show_time_lag=yes", admin_token)
    assert not_a_boolean.status_code == 422  # a boolean, as Nakadi parses it
    assert_matches_spec("get", f"{SUBSCRIPTION}/stats", not_a_boolean)
    reset = {"items": [{"event_type": "order.created", "partition": "1", "offset": "BEGIN"}]}
    patched = call(client, "patch", f"{path}/cursors", admin_token, reset)
    assert patched.status_code == 204
    assert_matches_spec("patch", f"{SUBSCRIPTION}/cursors", patched)
    refused = call(
        client,
        "post",
        f"{path}/cursors",
        admin_token,
        {"items": [{**reset["items"][0], "cursor_token": "x"}]},
        HTTP_X_NAKADI_STREAMID=str(uuid.uuid4()),
    )
    assert refused.status_code == 422
    assert "not a live session" in refused.json()["detail"]
    assert_matches_spec("post", f"{SUBSCRIPTION}/cursors", refused)
    forbidden = call(client, "get", f"{path}/stats", stranger_token)
    assert forbidden.status_code == 403
    assert_matches_spec("get", f"{SUBSCRIPTION}/stats", forbidden)


def test_it_describes_a_subscription_s_dead_letters(
    client, admin_token, stranger_token, order_type
):
    path = subscribe(client, admin_token)
    subscription = Subscription.objects.get(pk=path.rsplit("/", 1)[1])
    for offset in ("1795252632832-0", "1795252632999-0"):
        DeadLetter.objects.create(
            subscription=subscription,
            event_type=EventType.objects.get(name="order.created"),
            partition=1,
            offset=offset,
            body=orjson.dumps(business_event("A-1")).decode(),
            deliveries=11,
            reason="max_deliveries",
        )
    letters = f"{SUBSCRIPTION}/dead-letters"
    first = call(client, "get", f"{path}/dead-letters?limit=1", admin_token)
    assert "next" in first.json()["_links"]
    assert_matches_spec("get", letters, first)
    second = call(client, "get", first.json()["_links"]["next"]["href"], admin_token)
    assert "prev" in second.json()["_links"]
    assert_matches_spec("get", letters, second)
    (item,) = second.json()["items"]
    one = call(client, "get", f"{path}/dead-letters/{item['id']}", admin_token)
    assert_matches_spec("get", f"{letters}/{{dead_letter_id}}", one)
    replayed = call(client, "post", f"{path}/dead-letters/{item['id']}/replay", admin_token)
    assert replayed.status_code == 200
    assert_matches_spec("post", f"{letters}/{{dead_letter_id}}/replay", replayed)
    again = call(client, "post", f"{path}/dead-letters/{item['id']}/replay", admin_token)
    assert again.status_code == 409
    assert_matches_spec("post", f"{letters}/{{dead_letter_id}}/replay", again)
    shown = call(client, "get", f"{path}/dead-letters?status=replayed", admin_token)
    assert [i["replayed_at"] is not None for i in shown.json()["items"]] == [True]
    assert_matches_spec("get", letters, shown)
    invalid = call(client, "get", f"{path}/dead-letters?status=lost", admin_token)
    assert invalid.status_code == 422
    assert_matches_spec("get", letters, invalid)
    forbidden = call(client, "get", f"{path}/dead-letters", stranger_token)
    assert forbidden.status_code == 403
    assert_matches_spec("get", letters, forbidden)
    deleted = call(client, "delete", f"{path}/dead-letters/{item['id']}", admin_token)
    assert deleted.status_code == 204
    assert_matches_spec("delete", f"{letters}/{{dead_letter_id}}", deleted)


def test_it_describes_schema_versions_and_their_pages(client, producer_token, order_type):
    schema = {
        "type": "object",
        "properties": {
            "order_number": {"type": "string"},
            "amount": {"type": "number", "minimum": 0},
            "note": {"type": "string"},
        },
        "required": ["order_number"],
    }
    body = event_type_body(partitions=2, json_schema=schema)
    assert call(client, "put", ORDER, producer_token, body).status_code == 200
    first_page = call(client, "get", f"{ORDER}/schemas?limit=1", producer_token)
    assert "next" in first_page.json()["_links"]
    assert_matches_spec("get", "/api/event-types/{name}/schemas", first_page)
    second_page = call(client, "get", f"{ORDER}/schemas?limit=1&offset=1", producer_token)
    assert "prev" in second_page.json()["_links"]
    assert_matches_spec("get", "/api/event-types/{name}/schemas", second_page)
    for version in ("latest", "1.0.0"):
        one = call(client, "get", f"{ORDER}/schemas/{version}", producer_token)
        assert one.status_code == 200
        assert_matches_spec("get", "/api/event-types/{name}/schemas/{version}", one)


def test_it_describes_partitions_empty_and_holding_events(client, producer_token, order_type):
    empty = call(client, "get", f"{ORDER}/partitions", producer_token)
    assert_matches_spec("get", "/api/event-types/{name}/partitions", empty)
    published = call(
        client,
        "post",
        f"{ORDER}/events",
        producer_token,
        [business_event(f"A-{i}") for i in range(6)],
    )
    assert published.status_code == 200
    assert_matches_spec("post", "/api/event-types/{name}/events", published)
    listed = call(client, "get", f"{ORDER}/partitions", producer_token)
    assert sum(p["length"] for p in listed.json()) == 6
    for partition in (p for p in listed.json() if p["length"]):
        offsets = partition["oldest_available_offset"], partition["newest_available_offset"]
        assert all(re.fullmatch(r"\d+-\d+", offset) for offset in offsets), partition
    assert_matches_spec("get", "/api/event-types/{name}/partitions", listed)
    one = call(client, "get", f"{ORDER}/partitions/1", producer_token)
    assert_matches_spec("get", "/api/event-types/{name}/partitions/{partition}", one)


def test_it_describes_a_refused_batch_even_without_eids(client, admin_token):
    body = event_type_body("audit.raw", category="undefined")
    assert call(client, "post", ET, admin_token, body).status_code == 201
    response = call(
        client,
        "post",
        "/api/event-types/audit.raw/events",
        admin_token,
        [{"order_number": "A-1"}, {"amount": 3}],
    )
    assert response.status_code == 422
    assert [item["publishing_status"] for item in response.json()] == ["aborted", "failed"]
    assert_matches_spec("post", "/api/event-types/{name}/events", response)


# fmt: off
# (name, method, path template, token, body, extra request arguments, expected status)
CASES: list[tuple[str, str, str, str | None, Any, dict[str, Any], int]] = [
    ("no token", "get", "/api/event-types", None, None, {}, 401),
    ("unknown token", "get", "/api/event-types/{name}", None, None,
     {"HTTP_AUTHORIZATION": "Bearer nope"}, 401),
    ("duplicate name", "post", "/api/event-types", "producer", event_type_body(), {}, 409),
    ("invalid type", "post", "/api/event-types", "producer",
     event_type_body(category="weird"), {}, 422),
    ("malformed type", "post", "/api/event-types", "producer", b"{nope", {}, 400),
    ("type as text", "post", "/api/event-types", "producer", b"{}",
     {"content_type": "text/plain"}, 415),
    ("no grant to create", "post", "/api/event-types", "stranger",
     event_type_body("order.other"), {}, 403),
    ("update refused", "put", "/api/event-types/{name}", "producer",
     event_type_body(category="data"), {}, 422),
    ("update by a stranger", "put", "/api/event-types/{name}", "stranger",
     event_type_body(partitions=2), {}, 403),
    ("delete by a stranger", "delete", "/api/event-types/{name}", "stranger", None, {}, 403),
    ("unknown type", "get", "/api/event-types/{name}", "producer", None,
     {"path": "/api/event-types/nothing"}, 404),
    ("bad paging", "get", "/api/event-types/{name}/schemas", "producer", None,
     {"path": "/api/event-types/order.created/schemas?limit=0"}, 400),
    ("unknown schema version", "get", "/api/event-types/{name}/schemas/{version}", "producer",
     None, {"path": "/api/event-types/order.created/schemas/9.9.9"}, 404),
    ("partitions unreadable", "get", "/api/event-types/{name}/partitions", "stranger", None,
     {}, 403),
    ("unknown partition", "get", "/api/event-types/{name}/partitions/{partition}", "producer",
     None, {"path": "/api/event-types/order.created/partitions/7"}, 404),
    ("invalid event", "post", "/api/event-types/{name}/events", "producer",
     [business_event(), {"metadata": {"eid": "nope"}, "order_number": "A-2"}], {}, 422),
    ("malformed events", "post", "/api/event-types/{name}/events", "producer", b"[{", {}, 400),
    ("events not an array", "post", "/api/event-types/{name}/events", "producer",
     business_event(), {}, 400),
    ("events as text", "post", "/api/event-types/{name}/events", "producer", b"[]",
     {"content_type": "text/plain"}, 415),
    ("no grant to publish", "post", "/api/event-types/{name}/events", "stranger",
     [business_event()], {}, 403),
    ("publish to an unknown type", "post", "/api/event-types/{name}/events", "producer",
     [business_event()], {"path": "/api/event-types/nothing/events"}, 404),
    ("cursors of an unknown subscription", "get", "/api/subscriptions/{subscription_id}/cursors",
     "admin", None, {}, 404),
    ("commit without a token", "post", "/api/subscriptions/{subscription_id}/cursors", None,
     {"items": []}, {}, 401),
    ("reset on an unknown subscription", "patch",
     "/api/subscriptions/{subscription_id}/cursors", "admin", {"items": []}, {}, 404),
    ("stats of an unknown subscription", "get", "/api/subscriptions/{subscription_id}/stats",
     "admin", None, {}, 404),
    ("dead letters of an unknown subscription", "get",
     "/api/subscriptions/{subscription_id}/dead-letters", "admin", None, {}, 404),
    ("dead letters without a token", "get", "/api/subscriptions/{subscription_id}/dead-letters",
     None, None, {}, 401),
    ("an unknown dead letter", "get",
     "/api/subscriptions/{subscription_id}/dead-letters/{dead_letter_id}", "admin", None, {},
     404),
    ("discard an unknown dead letter", "delete",
     "/api/subscriptions/{subscription_id}/dead-letters/{dead_letter_id}", "admin", None, {},
     404),
    ("replay an unknown dead letter", "post",
     "/api/subscriptions/{subscription_id}/dead-letters/{dead_letter_id}/replay", "admin", None,
     {}, 404),
]
# fmt: on


@pytest.mark.parametrize(
    ("method", "template", "who", "body", "extra", "status"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_it_answers_errors_as_documented(
    request, client, order_type, method, template, who, body, extra, status
):
    token = request.getfixturevalue(f"{who}_token") if who else None
    extra = dict(extra)
    path = extra.pop("path", sample_path(template))
    response = call(client, method, path, token, body, **extra)
    assert response.status_code == status, response.content
    assert_matches_spec(method, template, response)


def test_it_answers_413_as_documented_for_an_event_too_large(client, producer_token, order_type):
    with override_settings(MAX_EVENT_BYTES=200):
        response = call(
            client, "post", f"{ORDER}/events", producer_token, [business_event(note="x" * 300)]
        )
    assert response.status_code == 413
    assert_matches_spec("post", "/api/event-types/{name}/events", response)


def test_it_answers_413_as_documented_for_a_body_too_large(client, producer_token, order_type):
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100):
        published = call(
            client, "post", f"{ORDER}/events", producer_token, [business_event(note="x" * 300)]
        )
        created = call(client, "post", ET, producer_token, event_type_body("order.big"))
    assert (published.status_code, created.status_code) == (413, 413)
    assert_matches_spec("post", "/api/event-types/{name}/events", published)
    assert_matches_spec("post", "/api/event-types", created)


@pytest.mark.django_db
def test_it_describes_the_health_probes(client):
    assert_matches_spec("get", "/health/live", client.get("/health/live"))
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert_matches_spec("get", "/health/ready", ready)


# -- serving the document and the docs page ----------------------------------------------


@pytest.mark.no_redis
def test_it_serves_the_document_as_json_and_yaml_without_a_token(client):
    as_json = client.get("/api/openapi.json")
    assert as_json.status_code == 200
    assert as_json["Content-Type"] == "application/json"
    assert orjson.loads(as_json.content) == SPEC
    assert_matches_spec("get", "/api/openapi.json", as_json)
    as_yaml = client.get("/api/openapi.yaml")
    assert as_yaml.status_code == 200
    assert as_yaml["Content-Type"] == "application/yaml"
    assert yaml.safe_load(as_yaml.content) == SPEC
    assert_matches_spec("get", "/api/openapi.yaml", as_yaml)


@pytest.mark.no_redis
def test_it_renders_a_self_contained_docs_page_with_every_operation(client):
    response = client.get("/docs")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    for path, method, operation in operations():
        assert f"<code>{path}</code>" in html, path
        assert f'id="{operation["operationId"]}"' in html, f"{method} {path}"
        assert operation["summary"] in html
    assert "createclient" in html
    assert 'href="/admin/"' in html
    assert 'href="/api/openapi.json"' in html
    assert not re.search(r"<script|<link|<img|@import|url\(", html)


@pytest.mark.no_redis
def test_it_sends_the_site_root_to_the_docs(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/docs"


# -- streams, from the real server ------------------------------------------------------

STREAM = "/api/subscriptions/{subscription_id}/events"
BATCH = pointer("components", "schemas", "Batch")


@pytest.fixture
def consumer(live_server: LiveServer, admin_token: str) -> Iterator[tuple[httpx.Client, str]]:
    """An HTTP client of the real server, and a subscription (from the beginning) to
    order.created, which has one partition and holds one event.
    """
    with live_server.client(admin_token) as http:
        assert http.post(ET, json=event_type_body()).status_code == 201
        body = {"owning_application": "billing", "event_types": ["order.created"]}
        created = http.post("/api/subscriptions", json={**body, "read_from": "begin"})
        assert created.status_code == 201
        assert http.post(f"{ORDER}/events", json=[business_event("A-1")]).status_code == 200
        yield http, f"/api/subscriptions/{created.json()['id']}"


def first_batch(lines: Iterator[str]) -> tuple[bytes, dict[str, Any]]:
    """The lines of a stream up to its first batch with events, and that batch. The caller
    keeps `lines`: once the last reference to it is dropped, httpx closes the connection.
    """
    read = b""
    for line in lines:
        read += line.encode() + b"\n"
        batch = orjson.loads(line)
        if "events" in batch:
            return read, batch
    pytest.fail(f"the stream ended without events: {read!r}")


def test_it_describes_a_streamed_batch(consumer):
    http, path = consumer
    params = {"stream_limit": 1, "batch_flush_timeout": 1}
    with http.stream("GET", f"{path}/events", params=params) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        read, batch = first_batch(lines)
    assert [event["order_number"] for event in batch["events"]] == ["A-1"]
    assert batch["info"]["stream_id"] == response.headers["X-Nakadi-StreamId"]
    assert_matches_spec("get", STREAM, response, body=read)


def test_it_describes_a_stream_s_end_as_server_sent_events(consumer):
    http, path = consumer
    # The event stays uncommitted: at its keep-alive limit the stream waits a commit
    # timeout for its commit, sending keep-alives, then ends.
    body = {
        "max_uncommitted_events": 5,
        "batch_flush_timeout": 1,
        "stream_keep_alive_limit": 1,
        "commit_timeout": 2,
    }
    response = http.post(f"{path}/events", json=body, headers={"Accept": "text/event-stream"})
    assert_matches_spec("post", STREAM, response)
    messages = [
        dict(line.split(": ", 1) for line in block.splitlines())
        for block in response.text.split("\n\n")
        if block.strip() and not block.startswith("retry:")
    ]
    # The batch with the event, keep-alives, the last batch (a keep-alive), the close.
    kinds = [m["event"] for m in messages]
    assert kinds[0] == "batch"
    assert kinds[-1] == "close"
    assert set(kinds[1:-1]) == {"keep-alive"}
    assert [("id" in m) for m in messages] == [True] + [False] * (len(messages) - 1)
    for message in messages[:-1]:
        assert_valid(orjson.loads(message["data"]), BATCH)
    last = orjson.loads(messages[-2]["data"])["info"]["close_reason"]
    assert last == orjson.loads(messages[-1]["data"])["close_reason"] == "keep_alive_limit"


@contextmanager
def streaming(http: httpx.Client, path: str) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """A stream of the subscription at `path`, open while the block runs: its first batch
    with events, and the X-Nakadi-StreamId header that commits on it carry.
    """
    with http.stream("GET", f"{path}/events", params={"batch_flush_timeout": 1}) as response:
        lines = response.iter_lines()
        _, batch = first_batch(lines)
        yield batch, {"X-Nakadi-StreamId": response.headers["X-Nakadi-StreamId"]}


def test_it_describes_a_commit_of_a_live_stream(consumer):
    http, path = consumer
    with streaming(http, path) as (batch, stream):
        committed = http.post(f"{path}/cursors", json={"items": [batch["cursor"]]}, headers=stream)
    assert committed.status_code == 204, committed.text
    assert_matches_spec("post", f"{SUBSCRIPTION}/cursors", committed)
    cursors = http.get(f"{path}/cursors").json()["items"]
    assert [c["offset"] for c in cursors] == [batch["cursor"]["offset"]]


def test_it_describes_an_outdated_commit(consumer):
    http, path = consumer
    with streaming(http, path) as (batch, stream):
        for _ in range(2):
            answer = http.post(f"{path}/cursors", json={"items": [batch["cursor"]]}, headers=stream)
    assert answer.status_code == 200
    assert [item["result"] for item in answer.json()["items"]] == ["outdated"]
    assert_matches_spec("post", f"{SUBSCRIPTION}/cursors", answer)


def test_it_describes_a_stream_that_cannot_open(live_server, consumer):
    http, path = consumer
    cases = [
        (httpx.get(f"{live_server.url}{path}/events"), "get", 401),
        (http.get(f"/api/subscriptions/{uuid.uuid4()}/events"), "get", 404),
        (http.get(f"{path}/events", params={"batch_limit": 0}), "get", 422),
        (http.post(f"{path}/events", content=b"{nope"), "post", 400),
        (
            http.post(
                f"{path}/events",
                json={"partitions": [{"event_type": "order.created", "partition": "3"}]},
            ),
            "post",
            422,
        ),
    ]
    with http.stream("GET", f"{path}/events", params={"batch_flush_timeout": 1}) as holder:
        lines = holder.iter_lines()
        first_batch(lines)  # the only partition is taken
        cases.append((http.get(f"{path}/events"), "get", 409))
    for response, method, status in cases:
        assert response.status_code == status, response.text
        assert_matches_spec(method, STREAM, response)
