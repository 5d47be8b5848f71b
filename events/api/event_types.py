"""The REST API for event types, their partitions and publishing (Nakadi's contract).

Views only parse, authorize, call the domain and render; errors are raised as Problems.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse

from events.api.decorators import api_view, principal_of
from events.api.http import json_response, paginate, read_json
from events.catalog import event_types, snapshots
from events.catalog.auth import Principal
from events.catalog.retention import retention
from events.core import publishing
from events.core.metadata import COMPACTED
from events.core.problems import Problem
from events.core.schemas import SchemaError
from events.core.times import rfc3339
from events.models import EventType, EventTypeSchema
from events.store import partitions
from events.streaming.publishing import publish


def _event_type(name: str) -> EventType:
    try:
        return EventType.objects.get(name=name)
    except EventType.DoesNotExist:
        raise Problem(404, f'EventType "{name}" does not exist.') from None


@api_view("GET", "POST")
def event_type_list(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        rows = EventType.objects.all()
        if owner := request.GET.get("owning_application"):
            rows = rows.filter(owning_application=owner)
        return json_response([event_types.render(row) for row in rows])
    body = read_json(request)
    principal = principal_of(request)
    name = body.get("name") if isinstance(body, dict) else None
    principal.require("publish", name if isinstance(name, str) else "")
    fields = event_types.parse(body)
    if not principal.is_admin and fields["owning_application"] != principal.name:
        raise Problem(
            403,
            f"Client {principal.name!r} may only define event types it owns: "
            f"owning_application must be {principal.name!r}.",
        )
    try:
        with transaction.atomic():
            row = EventType.objects.create(**fields)
            event_types.record_schema(row)
    except IntegrityError:
        raise Problem(409, f"EventType {fields['name']} already exists.") from None
    return json_response(
        event_types.render(row), status=201, headers={"Location": f"/api/event-types/{row.name}"}
    )


def _require_owner(principal: Principal, row: EventType, action: str) -> None:
    """An admin, one of the type's authorization `admins`, or the owning application with
    the publish grant, may change or delete it."""
    if principal.administers(row.authorization):
        return
    principal.require("publish", row.name)
    if row.owning_application != principal.name:
        raise Problem(
            403,
            f"Only an admin, the event type's authorization admins or the owning application "
            f"{row.owning_application!r} may {action} event type {row.name!r}.",
        )


@api_view("GET", "PUT", "DELETE")
def event_type_detail(request: HttpRequest, name: str) -> HttpResponse:
    principal = principal_of(request)
    if request.method == "GET":
        return json_response(event_types.render(_event_type(name)))
    if request.method == "DELETE":
        row = _event_type(name)
        _require_owner(principal, row, "delete")
        if row.subscriptions.exists():
            raise Problem(409, f"Can't remove event type {name}, as it has subscriptions.")
        row.delete()
        partitions.delete_partitions(row.store_id, row.partition_count)
        return HttpResponse(status=200)
    with transaction.atomic():
        locked = EventType.objects.select_for_update().filter(name=name).first()
        if locked is None:
            raise Problem(404, f'EventType "{name}" does not exist.')
        row = locked
        # As stored (Nakadi checks the old section), and 403 before the body's 422.
        _require_owner(principal, row, "change")
        fields = event_types.parse(read_json(request))
        if fields["owning_application"] != row.owning_application and not principal.is_admin:
            raise Problem(403, "Only an admin may give an event type another owning_application.")
        changed = event_types.apply_update(row, fields, admin=principal.is_admin)
        if changed:
            row.save()
        if "schema_version" in changed:
            event_types.record_schema(row)
    return json_response(event_types.render(row))


def _render_schema(row: EventTypeSchema) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "schema": row.schema,
        "version": row.version,
        "created_at": rfc3339(row.created_at),
    }


@api_view("GET")
def schema_list(request: HttpRequest, name: str) -> HttpResponse:
    row = _event_type(name)
    return json_response(paginate(request, row.schemas.all(), _render_schema))


@api_view("GET")
def schema_detail(request: HttpRequest, name: str, version: str) -> HttpResponse:
    row = _event_type(name)
    schemas = row.schemas.all()
    found = schemas.first() if version == "latest" else schemas.filter(version=version).first()
    if found is None:
        raise Problem(404, f'EventType "{name}" has no schema version "{version}".')
    return json_response(_render_schema(found))


_PARTITION_ID = re.compile(r"0|[1-9][0-9]{0,8}")


def _render_partition(info: partitions.PartitionInfo) -> dict[str, Any]:
    return {
        "partition": str(info.partition),
        "oldest_available_offset": info.oldest_available_offset,
        "newest_available_offset": info.newest_available_offset,
        "length": info.length,
    }


@api_view("GET")
def partition_list(request: HttpRequest, name: str) -> HttpResponse:
    row = _event_type(name)
    principal_of(request).require("read", name, row.authorization)
    infos = partitions.partition_info(row.store_id, range(row.partition_count))
    return json_response([_render_partition(info) for info in infos])


@api_view("GET")
def partition_detail(request: HttpRequest, name: str, partition: str) -> HttpResponse:
    row = _event_type(name)
    principal_of(request).require("read", name, row.authorization)
    if not _PARTITION_ID.fullmatch(partition) or int(partition) >= row.partition_count:
        raise Problem(404, f'Partition "{partition}" not found in EventType "{name}".')
    [info] = partitions.partition_info(row.store_id, [int(partition)])
    return json_response(_render_partition(info))


def publishing_target(name: str) -> publishing.Target:
    row = _event_type(name)
    return publishing.Target(
        name=row.name,
        store_id=row.store_id,
        category=row.category,
        partition_strategy=row.partition_strategy,
        partition_key_fields=tuple(row.partition_key_fields),
        partition_count=row.partition_count,
        schema=row.schema,
        schema_version=row.schema_version,
        strict=row.compatibility_mode == "compatible",
        enrich="metadata_enrichment" in row.enrichment_strategies,
        retention=retention(row),
        compacted=row.cleanup_policy in COMPACTED,
        authorization=row.authorization,
    )


@api_view("POST")
async def publish_events(request: HttpRequest, name: str) -> HttpResponse:
    target = await snapshots.target(name, publishing_target)
    principal = principal_of(request)
    principal.require("publish", name, target.authorization)
    events = read_json(request)
    if not isinstance(events, list):
        raise Problem(400, "The body must be a JSON array of events.")
    if len(events) > settings.MAX_BATCH_EVENTS:
        raise Problem(
            413,
            f"The batch holds {len(events)} events; the maximum is {settings.MAX_BATCH_EVENTS}. "
            "Nothing was stored.",
        )
    try:
        outcome = await publish(
            events,
            target,
            published_by=principal.name,
            flow_id=request.headers.get("X-Flow-Id"),
            max_event_bytes=settings.MAX_EVENT_BYTES,
            dedup_seconds=settings.EID_DEDUP_SECONDS,
        )
    except SchemaError as error:  # stored before schemas were checked as they are now
        raise Problem(422, f"The event type's schema cannot be used: {error}.") from None
    except publishing.EventTooLarge as error:
        raise Problem(
            413,
            f"Event {error.index} is {error.size} bytes; the maximum is "
            f"{settings.MAX_EVENT_BYTES} bytes. Nothing was stored.",
        ) from None
    if outcome.status == 200:
        return HttpResponse(status=200)
    return json_response([item.as_json() for item in outcome.items], status=outcome.status)
