"""The Nakadi EventType contract: reading a request body into model fields, rendering a
model back, and the rules for changing an existing type (PUT). No Redis here.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from django.conf import settings
from django.utils import timezone

from events.core.annotations import check_event_owner_selector, check_string_map
from events.core.authorization import EVENT_TYPE_ROLES, check_authorization
from events.core.metadata import CLEANUP_POLICIES, COMPACTED
from events.core.numbers import whole_number
from events.core.problems import Problem
from events.core.schema_diff import evolve
from events.core.schema_paths import defines, event_defines
from events.core.schemas import SchemaError, parse_schema
from events.core.times import rfc3339
from events.models import EVENT_TYPE_NAME_RE, EventType, EventTypeSchema

CATEGORIES = {c.value for c in EventType.Category}
STRATEGIES = {s.value for s in EventType.PartitionStrategy}
MODES = {m.value for m in EventType.CompatibilityMode}
# Allowed compatibility-mode changes: a mode may only become stricter.
MODE_CHANGES = {
    "none": {"none", "forward"},
    "forward": {"forward", "compatible"},
    "compatible": {"compatible"},
}
MIN_RETENTION_MS = 60_000
# A bound that fits the BIGINT column with room to spare; no stream holds more events.
MAX_RETENTION_EVENTS = 10**12
_NAME = re.compile(EVENT_TYPE_NAME_RE)


def invalid(detail: str) -> Problem:
    return Problem(422, detail)


def _require(body: dict[str, Any], key: str, kind: type, what: str) -> Any:
    value = body.get(key)
    if not isinstance(value, kind) or (isinstance(value, str) and not value):
        raise invalid(f'Field "{key}" is required and must be {what}.')
    return value


def _choice(body: dict[str, Any], key: str, allowed: set[str], default: str) -> str:
    """The enum value of `key`, `default` when absent; 422 for anything but an allowed string."""
    value = body.get(key)
    if value is None or value == "":
        return default
    if not isinstance(value, str) or value not in allowed:
        raise invalid(f'Field "{key}" must be one of {sorted(allowed)}.')
    return value


def _string_list(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise invalid(f'Field "{key}" must be a list of field names.')
    return value


def parse(body: Any) -> dict[str, Any]:
    """Model fields from a POST/PUT body; 422 naming the first problem found."""
    if not isinstance(body, dict):
        raise invalid("The body must be an EventType object.")
    name = _require(body, "name", str, "a string")
    # fullmatch: `$` would let a trailing newline through.
    if len(name) > 255 or not _NAME.fullmatch(name):
        raise invalid(f'Field "name" {name!r} must match {EVENT_TYPE_NAME_RE} (at most 255).')
    fields: dict[str, Any] = {
        "name": name,
        "owning_application": _require(body, "owning_application", str, "a string"),
        "category": _require(body, "category", str, "undefined, data or business"),
        "partition_strategy": _choice(body, "partition_strategy", STRATEGIES, "random"),
        "partition_key_fields": _string_list(body, "partition_key_fields"),
        "ordering_key_fields": _string_list(body, "ordering_key_fields"),
        "compatibility_mode": _choice(body, "compatibility_mode", MODES, "forward"),
        "cleanup_policy": _choice(body, "cleanup_policy", set(CLEANUP_POLICIES), "delete"),
        "audience": _audience(body),
        "authorization": check_authorization(body, EVENT_TYPE_ROLES),
        "annotations": check_string_map(body, "annotations"),
        "labels": check_string_map(body, "labels"),
        "event_owner_selector": check_event_owner_selector(body),
    }
    if fields["category"] not in CATEGORIES:
        raise invalid(f'Field "category" must be one of {sorted(CATEGORIES)}.')
    fields["enrichment_strategies"] = _enrichment(body, fields["category"])
    _check_partitioning(fields)
    fields["schema"], doc = _schema(body, fields["category"], fields["compatibility_mode"])
    _check_key_fields("partition_key_fields", fields["partition_key_fields"], doc)
    _check_ordering_keys(fields["ordering_key_fields"], fields["category"], doc)
    fields.update(_statistic(body))
    fields.update(_options(body))
    _check_cleanup(fields)
    return fields


AUDIENCES = (
    "component-internal",
    "business-unit-internal",
    "company-internal",
    "external-partner",
    "external-public",
)


def _audience(body: dict[str, Any]) -> str:
    audience = body.get("audience")
    if audience is None:
        return ""
    if audience not in AUDIENCES:
        raise invalid(f'Field "audience" must be one of {", ".join(AUDIENCES)}.')
    return str(audience)


def _enrichment(body: dict[str, Any], category: str) -> list[str]:
    strategies = _string_list(body, "enrichment_strategies")
    duplicated = len(set(strategies)) != len(strategies)
    if duplicated or any(s != "metadata_enrichment" for s in strategies):
        raise invalid('Field "enrichment_strategies" may only hold "metadata_enrichment", once.')
    if category == "undefined" and strategies:
        raise invalid("An undefined event type must not define an enrichment strategy.")
    if category != "undefined":
        # Nakadi requires the producer to ask for it; a missing one is what they meant.
        strategies = ["metadata_enrichment"]
    return strategies


def _check_partitioning(fields: dict[str, Any]) -> None:
    strategy, keys = fields["partition_strategy"], fields["partition_key_fields"]
    if strategy == "hash" and not keys:
        raise invalid("partition_key_fields is required when partition strategy is 'hash'.")
    if strategy != "hash" and keys:
        raise invalid("partition_key_fields is only allowed with partition strategy 'hash'.")
    if strategy == "user_defined" and fields["category"] == "undefined":
        raise invalid("user_defined partitioning needs metadata: not for undefined types.")


def _check_cleanup(fields: dict[str, Any]) -> None:
    """Compaction needs metadata (Nakadi's rule), and `compact` keeps the latest event of
    every key, which a length limit would remove."""
    policy = fields["cleanup_policy"]
    if policy in COMPACTED and fields["category"] == "undefined":
        raise invalid(
            "cleanup_policy 'compact' and 'compact_and_delete' is not available for "
            "'undefined' event type category"
        )
    if policy == "compact" and fields["retention_max_events"] is not None:
        raise invalid(
            'Field "options.retention_max_events" is not available with cleanup_policy '
            "'compact': it would remove the latest event of a key."
        )


def _schema(body: dict[str, Any], category: str, mode: str) -> tuple[str, dict[str, Any]]:
    """The user schema of the body, as text and parsed, checked as Nakadi checks it."""
    schema = body.get("schema")
    if not isinstance(schema, dict):
        raise invalid('Field "schema" is required: {"type": "json_schema", "schema": "<json>"}.')
    if schema.get("type") != "json_schema":
        raise invalid('Field "schema.type" must be "json_schema".')
    text = schema.get("schema")
    if not isinstance(text, str):
        raise invalid('Field "schema.schema" must be the JSON schema as a string.')
    try:
        doc = parse_schema(text)
    except SchemaError as error:
        raise invalid(f"Invalid schema: {error}.") from None
    if doc.get("type", "object") != "object":
        raise invalid('"type" of root element in schema can only be "object".')
    if category == "business" and "metadata" in doc.get("properties", {}):
        raise invalid('"metadata" property is reserved in business event schemas.')
    if mode == "compatible":
        forbidden = _COMPATIBLE_FORBIDDEN & set(_keywords(doc))
        if forbidden:
            raise invalid(f"Invalid schema: {sorted(forbidden)} not supported in compatible mode.")
    return text, doc


def _check_key_fields(name: str, keys: list[str], schema: dict[str, Any]) -> None:
    """422 unless each dotted hash key names a property of the user schema.

    The paths are relative to the user schema in every category: for `data` that is the
    schema of `data`, where the partitioner reads them.
    """
    absent = [key for key in keys if not defines(schema, key.split("."))]
    if absent:
        raise invalid(f"{name} {absent} absent in schema.")


def _check_ordering_keys(keys: list[str], category: str, schema: dict[str, Any]) -> None:
    """422 unless each dotted ordering key names a property of the whole event, as Nakadi
    checks them (its effective schema): `data.x` for data events, `metadata.x` beside the
    business event's own fields.
    """
    absent = [key for key in keys if not event_defines(category, schema, key.split("."))]
    if absent:
        raise invalid(f"ordering_key_fields {absent} absent in schema.")


_COMPATIBLE_FORBIDDEN = frozenset({"not", "additionalItems", "const", "contains", "examples"})


def _keywords(schema: Any) -> list[str]:
    """Every keyword used anywhere in a schema (property names excluded)."""
    if isinstance(schema, list):
        return [k for item in schema for k in _keywords(item)]
    if not isinstance(schema, dict):
        return []
    found = list(schema)
    for key, value in schema.items():
        if key in ("properties", "definitions", "dependencies") and isinstance(value, dict):
            found += [k for sub in value.values() for k in _keywords(sub)]
        elif key not in ("enum", "required", "default"):
            found += _keywords(value)
    return found


def _statistic(body: dict[str, Any]) -> dict[str, Any]:
    """The statistic and the partition count it sets; neither when absent (the model's
    defaults on POST, the stored ones on PUT, as Nakadi keeps them)."""
    statistic = body.get("default_statistic")
    if statistic is None:
        return {}
    keys = ("messages_per_minute", "message_size", "read_parallelism", "write_parallelism")
    given = statistic if isinstance(statistic, dict) else {}
    values: dict[str, int] = {}
    for i, key in enumerate(keys):
        value = whole_number(given.get(key))
        if value is None or value < (0 if i == 0 else 1):
            raise invalid(
                f'Field "default_statistic" needs {", ".join(keys)} as positive integers.'
            )
        values[key] = value
    count = max(values["read_parallelism"], values["write_parallelism"])
    return {
        "default_statistic": values,
        "partition_count": min(count, settings.MAX_PARTITIONS),
    }


def _options(body: dict[str, Any]) -> dict[str, Any]:
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise invalid('Field "options" must be an object.')
    retention = options.get("retention_time", settings.DEFAULT_RETENTION_MS)
    if retention is None:
        retention = settings.DEFAULT_RETENTION_MS
    retention = whole_number(retention)
    if retention is None or not (MIN_RETENTION_MS <= retention <= settings.MAX_RETENTION_MS):
        raise invalid(
            f'Field "options.retention_time" must be {MIN_RETENTION_MS} to '
            f"{settings.MAX_RETENTION_MS} ms."
        )
    given = options.get("retention_max_events")
    max_events = whole_number(given)
    if given is not None and (max_events is None or not 1 <= max_events <= MAX_RETENTION_EVENTS):
        raise invalid(
            f'Field "options.retention_max_events" must be an integer from 1 to '
            f"{MAX_RETENTION_EVENTS}."
        )
    return {"retention_time_ms": retention, "retention_max_events": max_events}


def apply_update(
    event_type: EventType, fields: dict[str, Any], *, admin: bool = False
) -> list[str]:
    """Apply a PUT's fields to `event_type` under Nakadi's evolution rules (422 otherwise);
    only an `admin` may change or drop an event_owner_selector once set, or drop the
    authorization section.

    Returns the names of the model fields that changed; bumps the schema version.
    """
    if fields["name"] != event_type.name:
        raise invalid("The name in the body does not match the resource name.")
    selector, stored = fields.get("event_owner_selector"), event_type.event_owner_selector
    if not admin and stored is not None and selector != stored:
        raise invalid(
            "event_owner_selector can't be set back to null."
            if selector is None
            else "event_owner_selector must not be changed."
        )
    if not admin and event_type.authorization is not None and fields["authorization"] is None:
        # Nakadi's words; the section is enforced, and dropping it would drop its admins.
        raise invalid(
            "Changing authorization object to `null` is not possible due to existing one."
        )
    for key in ("category", "enrichment_strategies"):
        if fields[key] != getattr(event_type, key):
            raise invalid(f"{key} can not be changed.")
    old, new = event_type.cleanup_policy, fields["cleanup_policy"]
    if new != old and (old, new) != ("delete", "compact_and_delete"):  # as Nakadi allows
        raise invalid(
            f"Invalid cleanup_policy change: {old.upper()} cannot be changed to {new.upper()}"
        )
    if fields.get("partition_count", event_type.partition_count) != event_type.partition_count:
        raise invalid("default_statistic can not change the number of partitions.")
    if (
        fields["partition_strategy"] != event_type.partition_strategy
        and event_type.partition_strategy != "random"
    ):
        raise invalid("partition_strategy can only be changed from 'random'.")
    if fields["compatibility_mode"] not in MODE_CHANGES[event_type.compatibility_mode]:
        raise invalid(
            f"changing compatibility_mode from {event_type.compatibility_mode} to "
            f"{fields['compatibility_mode']} is not allowed: a mode may only get "
            "stricter."
        )
    # As in Nakadi, the original mode judges the change; see evolve for the switch rule.
    old_mode, new_mode = event_type.compatibility_mode, fields["compatibility_mode"]
    evolution = evolve(
        orjson.loads(event_type.schema),
        orjson.loads(fields["schema"]),
        old_text=event_type.schema,
        new_text=fields["schema"],
        old_mode=old_mode,
        new_mode=new_mode,
        version=event_type.schema_version,
    )
    if evolution.refused:
        reasons = ", ".join(
            f"{c.path}: {c.kind.lower().replace('_', ' ')}" for c in evolution.refused
        )
        rule = (
            f"when switching from {old_mode} to {new_mode}"
            if old_mode != new_mode
            else f"in {old_mode} mode"
        )
        raise invalid(f"Invalid schema: {reasons} (not allowed {rule}).")
    changed = [key for key, value in fields.items() if getattr(event_type, key) != value]
    for key in changed:
        setattr(event_type, key, fields[key])
    if evolution.version != event_type.schema_version:
        event_type.schema_version = evolution.version
        event_type.schema_created_at = timezone.now()
        changed += ["schema_version", "schema_created_at"]
    return changed


def record_schema(event_type: EventType) -> EventTypeSchema:
    """Keep the type's current schema version in its history (GET …/schemas)."""
    return EventTypeSchema.objects.create(
        event_type=event_type,
        version=event_type.schema_version,
        schema=event_type.schema,
        created_at=event_type.schema_created_at,
    )


def render(event_type: EventType) -> dict[str, Any]:
    """The Nakadi EventType JSON of a model."""
    out: dict[str, Any] = {
        "name": event_type.name,
        "owning_application": event_type.owning_application,
        "category": event_type.category,
        "enrichment_strategies": event_type.enrichment_strategies,
        "partition_strategy": event_type.partition_strategy,
        "partition_key_fields": event_type.partition_key_fields,
        "schema": {
            "type": "json_schema",
            "schema": event_type.schema,
            "version": event_type.schema_version,
            "created_at": rfc3339(event_type.schema_created_at),
        },
        "compatibility_mode": event_type.compatibility_mode,
        "default_statistic": event_type.default_statistic,
        "options": {"retention_time": event_type.retention_time_ms},
        "cleanup_policy": event_type.cleanup_policy,
        "ordering_key_fields": event_type.ordering_key_fields,
        "authorization": event_type.authorization,
        "number_of_partitions": event_type.partition_count,
        "created_at": rfc3339(event_type.created_at),
        "updated_at": rfc3339(event_type.updated_at),
    }
    if event_type.retention_max_events is not None:
        out["options"]["retention_max_events"] = event_type.retention_max_events
    if event_type.audience:
        out["audience"] = event_type.audience
    out["annotations"], out["labels"] = event_type.annotations, event_type.labels
    if event_type.event_owner_selector is not None:  # as Nakadi: omitted when null
        out["event_owner_selector"] = event_type.event_owner_selector
    return out
