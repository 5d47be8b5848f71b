"""Schemathesis over every operation of the OpenAPI document, against a real Daphne.

The document is the contract: every request it allows is accepted, or refused for a reason
it declares that JSON Schema cannot state (REFUSED_BY_MEANING, breaks_a_combination);
every request it forbids is refused with a 4xx; every answer (status, content type,
headers, body) is one it declares; a method it does not declare gets 405 with `Allow`;
and a caller without a token gets 401 wherever the document asks for one. Operations come
from the document itself, so operations added to it are fuzzed too.

Requests go to a real Daphne (tests/conftest.py) with an admin's token, half of them aimed
at real objects (a `world`: an event type with events, a subscription, a dead letter),
the others at the names the generator makes up. Streams stay open up to an hour: each one
that opens is read for a quarter of a second, as a client that then leaves, and what was read is
checked line by line (NDJSON) or message by message (SSE). Generation is derandomized and
keeps no database of examples, so every run sends the same requests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import requests
import schemathesis
import urllib3
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from events.api.openapi import OPENAPI_PATH
from events.models import DeadLetter, EventType, Subscription
from tests.api.test_openapi import assert_matches_spec
from tests.conftest import LiveServer
from tests.helpers import business_event, event_type_body

CONFIG = schemathesis.Config.from_dict(
    {
        "continue-on-failure": True,
        "generation": {
            "mode": "all",
            "max-examples": 20,
            "deterministic": True,
            "database": "none",
            "no-shrink": True,
            # Unknown query parameters are ignored, as Nakadi ignores them (clients send
            # their own): an extra one makes no request invalid.
            "allow-extra-parameters": False,
            # The token is the test's to send (or not): none is generated.
            "with-security-parameters": False,
        },
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
    }
)
SCHEMA = schemathesis.openapi.from_path(OPENAPI_PATH, config=CONFIG)

# Where a request the document allows may still be refused: what decides it is the state
# of the system or the meaning of a value, which JSON Schema cannot state; the document
# says so in the operation's description and declares the status.
REFUSED_BY_MEANING: dict[str, tuple[set[int], str]] = {
    "createEventType": (
        {422},
        "the JSON schema in `schema.schema` must be one, and match the key fields",
    ),
    "updateEventType": ({422}, "as for creating, and the change must follow the evolution rules"),
    "publishEvents": ({422}, "the events must match the event type's own schema"),
    "updateSubscription": ({422}, "all but the authorization must be as stored"),
    "commitCursors": ({422}, "cursors must name a live session's partitions and offsets it sent"),
    "resetCursors": ({422}, "cursors must name the subscription's partitions"),
    "ackEvents": ({422}, "only a shared subscription takes acks"),
    "streamEventsWithBody": ({422}, "`partitions` must name the subscription's partitions"),
    "readEventType": ({412}, "X-Nakadi-Cursors must name partitions and offsets that exist"),
    "readEvents": ({412}, "X-Nakadi-Cursors must name partitions and offsets that exist"),
}


def breaks_a_combination(case: Any) -> bool:
    """Whether the stream parameters break a rule between two of them (Nakadi's, and the
    document's): `stream_limit` below `batch_limit`, or `stream_timeout` below
    `batch_flush_timeout` (0 means the default, and so does a `stream_timeout` above 4200).
    """
    given = case.body if isinstance(case.body, dict) else (case.query or {})
    values: dict[str, int] = {}
    for name in ("batch_limit", "stream_limit", "batch_flush_timeout", "stream_timeout"):
        value = given.get(name)
        if isinstance(value, str) and value.isdecimal():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int | None):
            return False
        if value is not None:
            values[name] = value
    batch_limit = values.get("batch_limit") or 1
    stream_limit = values.get("stream_limit") or 0
    flush = values.get("batch_flush_timeout") or 30
    timeout = values.get("stream_timeout") or 3600
    timeout = 3600 if timeout > 4200 else timeout
    return bool(stream_limit and stream_limit < batch_limit) or timeout < flush


# Nakadi's dead-letter annotations and the subscription fields they set (the document's
# SubscriptionInput.annotations): a body may send both only when they agree.
SEND_COUNT = "nakadi.zalando.org/subscription-max-event-send-count"
POLICY = "nakadi.zalando.org/subscription-unprocessable-event-policy"
POLICIES = {"DEAD_LETTER_QUEUE": "dead_letter", "SKIP_EVENT": "skip"}


def disagrees_with_an_annotation(case: Any) -> bool:
    """Whether the body sends a field and an annotation that sets it to another value."""
    body = case.body if isinstance(case.body, dict) else {}
    annotations = body.get("annotations")
    if not isinstance(annotations, dict):
        return False
    count, policy = annotations.get(SEND_COUNT), annotations.get(POLICY)
    settings: dict[str, int | str] = {}
    if isinstance(count, str) and count.isascii() and count.isdigit():
        settings["max_deliveries"] = int(count)
    if isinstance(policy, str) and policy in POLICIES:
        settings["unprocessable_event_policy"] = POLICIES[policy]
    return any(field in body and body[field] != value for field, value in settings.items())


def skips_after_a_single_delivery(case: Any) -> bool:
    """Whether the body's settings, from its annotations or its fields, skip after a single
    delivery (`skip` with `max_deliveries` 1), which the document's descriptions refuse.
    """
    body = case.body if isinstance(case.body, dict) else {}
    annotations = body.get("annotations")
    annotations = annotations if isinstance(annotations, dict) else {}
    count, policy = annotations.get(SEND_COUNT), annotations.get(POLICY)
    deliveries = int(count) if isinstance(count, str) and count.isdecimal() else None
    deliveries = body.get("max_deliveries") if deliveries is None else deliveries
    skipping = POLICIES.get(policy) if isinstance(policy, str) else None
    skipping = skipping or body.get("unprocessable_event_policy")
    return skipping == "skip" and deliveries == 1


def accepts_what_the_document_allows(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schemathesis's positive_data_acceptance, but for the refusals the document declares
    for reasons JSON Schema cannot state (REFUSED_BY_MEANING, breaks_a_combination,
    disagrees_with_an_annotation, skips_after_a_single_delivery).
    """
    statuses, _ = REFUSED_BY_MEANING.get(
        case.operation.definition.raw.get("operationId"), (set(), "")
    )
    if response.status_code in statuses:
        return None
    if (
        response.status_code == 422
        and case.operation.path in STREAM_PATHS
        and breaks_a_combination(case)
    ):
        return None
    if response.status_code == 422 and (
        disagrees_with_an_annotation(case) or skips_after_a_single_delivery(case)
    ):
        return None
    return positive_data_acceptance(ctx, response, case)


def undeclared_methods_answer_405(ctx: Any, response: Any, case: Any) -> bool | None:
    """A method the document does not declare for a path gets 405, with an `Allow` header
    naming exactly the declared ones, as problem+json.
    """
    method = response.request.method.lower()
    declared = {m for m in SCHEMA.raw_schema["paths"][case.operation.path] if m in METHODS}
    if method in declared or method == "head":
        return None
    where = f"{method.upper()} {case.operation.path}"
    assert response.status_code == 405, f"{where} answered {response.status_code}"
    allow = ",".join(response.headers.get("allow", []))
    allowed = {m.strip().lower() for m in allow.split(",")}
    assert allowed - {"head"} == declared, f"{where}: Allow {allow}"
    assert response.headers["content-type"] == ["application/problem+json"], where
    return None


CHECKS = [
    not_a_server_error,
    undeclared_methods_answer_405,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    accepts_what_the_document_allows,
]

METHODS = {"get", "put", "post", "delete", "patch", "options", "trace", "query"}
STREAM_PATHS = {path for path in SCHEMA.raw_schema["paths"] if path.endswith("/events")}
# How long a stream that opened is read before the client leaves.
STREAM_READ_SECONDS = 0.25
ORDER_NAME = "order.created"
ORDER = f"/api/event-types/{ORDER_NAME}"


@dataclass
class World:
    """Real objects for generated requests to aim at, besides the names they make up."""

    server: LiveServer
    token: str
    path: dict[str, str]
    sent: int = 0


# Requests sent by each test here, by operation: the run must send at least 1,000.
SENT: dict[str, int] = {}
ENOUGH = 1000


@pytest.fixture(scope="module", autouse=True)
def _enough_requests() -> Iterator[None]:
    yield
    if set(SENT) >= {op.label for op in operations()}:  # the whole module ran
        total = sum(SENT.values())
        assert total >= ENOUGH, f"only {total} generated requests were sent"


def operations() -> list[Any]:
    return [result.ok() for result in SCHEMA.get_all_operations()]


@pytest.fixture
def world(live_server: LiveServer, admin_token: str) -> World:
    """order.created with three events, a subscription to it from the beginning, and a dead
    letter of that subscription.
    """
    with live_server.client(admin_token) as http:
        assert http.post("/api/event-types", json=event_type_body()).status_code == 201
        events = [business_event(f"A-{i}") for i in range(3)]
        assert http.post(f"{ORDER}/events", json=events).status_code == 200
        body = {"owning_application": "billing", "event_types": [ORDER_NAME], "read_from": "begin"}
        created = http.post("/api/subscriptions", json=body)
        assert created.status_code == 201
        subscription_id = created.json()["id"]
    dead = DeadLetter.objects.create(
        subscription=Subscription.objects.get(pk=subscription_id),
        event_type=EventType.objects.get(name=ORDER_NAME),
        partition=0,
        offset="1-0",
        body=orjson.dumps(business_event("A-0")).decode(),
        deliveries=11,
        reason="max_deliveries",
    )
    path = {
        "name": ORDER_NAME,
        "subscription_id": subscription_id,
        "dead_letter_id": str(dead.pk),
        "partition": "0",
        "version": "1.0.0",
    }
    return World(live_server, admin_token, path)


def aim(case: Any, world: World) -> None:
    """Point the case's path at the world's real objects (unless the path is meant to be
    invalid: then it stays as generated).
    """
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.PATH):
        return
    for name in list(case.path_parameters or {}):
        if name in world.path:
            case.path_parameters[name] = world.path[name]


def name_what_exists(case: Any) -> None:
    """In a valid case, name the world's event type wherever event types are named, with the
    initial cursors that `read_from=cursors` needs, and leave out what would keep a stream
    from opening: a stream token in the URL (the header carries the token) and
    `X-Nakadi-Cursors`, which the generator fills with partitions that do not exist.
    """
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    (case.query or {}).pop("access_token", None)
    (case.headers or {}).pop("X-Nakadi-Cursors", None)
    if "event_type" in (case.query or {}):  # GET /api/events
        case.query["event_type"] = [ORDER_NAME]
    if isinstance(case.body, dict) and isinstance(case.body.get("event_types"), list):
        case.body["event_types"] = [ORDER_NAME]
        if case.body.get("read_from") == "cursors":
            cursor = {"event_type": ORDER_NAME, "partition": "0", "offset": "BEGIN"}
            case.body["initial_cursors"] = [cursor]


def is_stream(case: Any) -> bool:
    """Whether the case opens a stream: a documented GET or POST of a stream path, but not
    publishing (a POST to an event type's events).
    """
    path, method = case.operation.path, case.method.lower()
    if path not in STREAM_PATHS or method not in SCHEMA.raw_schema["paths"][path]:
        return False
    return not (method == "post" and path == "/api/event-types/{name}/events")


def send(case: Any, world: World, headers: dict[str, str], checks: list[Any]) -> None:
    """Send the case to the real server and check the answer against the document."""
    SENT[case.operation.label] = SENT.get(case.operation.label, 0) + 1
    if not is_stream(case):
        case.call_and_validate(base_url=world.server.url, headers=headers, checks=checks)
        return
    response = read_stream(case, world, headers)
    case.validate_response(response, checks=checks, headers=headers)
    assert_matches_spec(case.method, case.operation.path, response)  # every NDJSON line read


def read_stream(case: Any, world: World, headers: dict[str, str]) -> requests.Response:
    """Open the stream, read it for a moment, leave: a stream may stay open for an hour.
    The body is what was read, up to the last whole line (NDJSON) or message (SSE).
    """
    kwargs = case.as_transport_kwargs(base_url=world.server.url, headers=headers)
    kwargs.pop("timeout", None)
    body = b""
    with requests.Session() as session:
        response = session.request(**kwargs, stream=True, timeout=(10, STREAM_READ_SECONDS))
        deadline = time.monotonic() + STREAM_READ_SECONDS
        try:
            while time.monotonic() < deadline and (chunk := response.raw.read1(65536)):
                body += chunk
        except (urllib3.exceptions.ReadTimeoutError, requests.exceptions.ConnectionError):
            pass  # the stream is open and quiet
        response.close()
    content_type = response.headers.get("Content-Type", "")
    if content_type.startswith("text/event-stream"):
        body = body[: body.rfind(b"\n\n") + 2]
    elif content_type.startswith("application/x-json-stream"):
        body = body[: body.rfind(b"\n") + 1]
    response._content = body
    return response


@schemathesis.deserializer("application/x-json-stream")
def first_batch(ctx: Any, response: Any) -> Any:
    """The first line of a JSON stream (send checks every line itself)."""
    lines = [line for line in response.content.splitlines() if line.strip()]
    if not lines:
        raise NotImplementedError  # schemathesis skips the body: nothing was read
    return orjson.loads(lines[0])


HEALTH_CHECKS = [
    HealthCheck.function_scoped_fixture,
    HealthCheck.too_slow,
    HealthCheck.filter_too_much,
]


@SCHEMA.parametrize()
@settings(suppress_health_check=HEALTH_CHECKS, deadline=None)
def test_every_operation_answers_as_documented(case, world):
    """Half the requests aim at real objects, every valid one names the world's event type;
    a third of the streams ask for SSE.
    """
    world.sent += 1
    if world.sent % 2:
        aim(case, world)
    name_what_exists(case)
    headers = {"Authorization": f"Bearer {world.token}"}
    if is_stream(case) and world.sent % 3 == 0:
        headers["Accept"] = "text/event-stream"
    send(case, world, headers, CHECKS)


def refuses_a_caller_without_a_token(ctx: Any, response: Any, case: Any) -> bool | None:
    """An operation the document does not make public answers 401 to a caller without a
    token, whatever else is wrong with the request.
    """
    if case.operation.definition.raw.get("security") == []:
        return None
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.PATH):
        return None  # a path that routes nowhere is 404 before anyone asks who calls
    assert response.status_code == 401, f"{case.operation.label} answered {response.status_code}"
    return None


ANONYMOUS = schemathesis.openapi.from_path(
    OPENAPI_PATH,
    config=schemathesis.Config.from_dict(
        {
            "continue-on-failure": True,
            "generation": {
                "mode": "all",
                "max-examples": 4,
                "deterministic": True,
                "database": "none",
                "no-shrink": True,
                "with-security-parameters": False,
            },
            "phases": {
                "examples": {"enabled": False},
                "coverage": {"enabled": False},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
        }
    ),
)
ANONYMOUS_CHECKS = [
    not_a_server_error,
    refuses_a_caller_without_a_token,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@ANONYMOUS.parametrize()
@settings(suppress_health_check=HEALTH_CHECKS, deadline=None)
def test_every_operation_answers_a_caller_without_a_token_as_documented(case, world):
    world.sent += 1
    if world.sent % 2:
        aim(case, world)
    send(case, world, {}, ANONYMOUS_CHECKS)
