"""Publishing a batch of events to an event type: validate, partition, enrich, store.

Steps follow Nakadi's BatchItemResponse: a failure in validating, partitioning or
enriching aborts the whole batch (422, nothing stored); a failure to store affects only
the partitions whose write failed (207). Storing is idempotent by `metadata.eid`.
"""

from __future__ import annotations

import functools
import logging
import re
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from events import streams
from events.http import rfc3339
from events.partitioning import PartitioningError, choose_partition
from events.schemas import Validator, compiled_validator, first_error, strict_schema

logger = logging.getLogger(__name__)

UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
DATA_OPS = frozenset({"C", "U", "D", "S"})
# What metadata enrichment sets; flow_id only where the producer sent none.
_ENRICHED = frozenset({"received_at", "event_type", "partition", "version", "published_by"})


@dataclass(frozen=True)
class Target:
    """What publishing needs to know of an event type: a plain snapshot, no ORM."""

    name: str
    stream_id: str  # the event type's Redis key prefix (not its name)
    category: str
    partition_strategy: str
    partition_key_fields: Sequence[str]
    partition_count: int
    schema: str
    schema_version: str
    strict: bool  # compatible mode: undeclared fields are refused
    enrich: bool
    retention: streams.Retention


@dataclass
class ItemResult:
    eid: str | None
    publishing_status: str = "aborted"
    step: str = "none"
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "eid": self.eid or "",
            "publishing_status": self.publishing_status,
            "step": self.step,
            "detail": self.detail,
        }


@dataclass
class Outcome:
    """200: every event stored; 207: some failed to store; 422: the batch was refused."""

    status: int
    items: list[ItemResult] = field(default_factory=list)


class EventTooLarge(Exception):
    def __init__(self, index: int, size: int) -> None:
        super().__init__(f"event {index} is {size} bytes")
        self.index = index
        self.size = size


def _eid_of(event: Any) -> str | None:
    """The event's eid when it is a UUID (only those name de-duplication keys)."""
    metadata = event.get("metadata") if isinstance(event, Mapping) else None
    eid = metadata.get("eid") if isinstance(metadata, Mapping) else None
    return eid if isinstance(eid, str) and UUID_RE.match(eid) else None


# Nakadi's event metadata (core-services schema_metadata.json), plus `topic`: what a
# producer may send.
# received_at and version are the server's; they are refused with their own message.
_UUID = {"type": "string", "pattern": UUID_RE.pattern}
METADATA_SCHEMA = {
    "type": "object",
    "required": ["eid", "occurred_at"],
    "additionalProperties": False,
    "properties": {
        "eid": _UUID,
        "occurred_at": {"type": "string", "format": "date-time"},
        "parent_eids": {"type": "array", "items": _UUID},
        "flow_id": {"type": "string"},
        "partition": {"type": "string"},
        "partition_compaction_key": {"type": "string", "minLength": 1},
        "span_ctx": {"type": "object", "additionalProperties": {"type": "string"}},
        "event_type": {"type": "string"},
        "published_by": {"type": "string"},
        # Streamsite's own: subscriptions may filter on it (events.topics).
        "topic": {"type": "string", "minLength": 1, "maxLength": 255},
    },
}
_METADATA = compiled_validator(orjson.dumps(METADATA_SCHEMA).decode())


@functools.lru_cache(maxsize=1024)
def effective_validator(category: str, schema: str, strict: bool) -> Validator:
    """The compiled schema check of one event's body (metadata is checked by `validate`)."""
    doc = orjson.loads(schema)
    if strict:
        doc = strict_schema(doc)
    if category == "business":
        # The schema describes the event's own fields; metadata sits beside them, also
        # when the schema lists no properties (compatible mode refuses undeclared ones).
        doc["properties"] = {**doc.get("properties", {}), "metadata": {}}
    return compiled_validator(orjson.dumps(doc).decode())


def _metadata_error(metadata: Any) -> str | None:
    if not isinstance(metadata, dict):
        return "metadata is required and must be an object"
    if "received_at" in metadata or "version" in metadata:
        return "metadata.received_at and metadata.version are set by the server"
    return first_error(_METADATA, metadata, at="metadata")


def validate(event: Any, category: str, validator: Validator) -> str | None:
    """Why `event` is invalid for its category and schema, or None when it is valid."""
    if not isinstance(event, dict):
        return "an event must be a JSON object"
    if category in ("business", "data"):
        problem = _metadata_error(event.get("metadata"))
        if problem is not None:
            return problem
    subject: Any = event
    if category == "data":
        data_op = event.get("data_op")
        if not isinstance(data_op, str) or data_op not in DATA_OPS:
            return "data_op must be one of C, U, D, S"
        if not isinstance(event.get("data_type"), str):
            return "data_type must be a string"
        subject = event.get("data")
        if not isinstance(subject, dict):
            return "data must be an object"
    return first_error(validator, subject)


@dataclass
class Prepared:
    items: list[ItemResult]
    partitions: list[int]  # of each event, in batch order
    batches: dict[int, streams.PartitionBatch]  # empty when the batch was refused


def prepare(
    events: Sequence[Any], target: Target, *, published_by: str, flow_id: str, max_event_bytes: int
) -> Prepared:
    """Validate, partition and enrich every event. On any failure the items say which
    events failed and no batch is returned; otherwise the encoded batches per partition.
    Raises EventTooLarge for an event over `max_event_bytes`.
    """
    validator = effective_validator(target.category, target.schema, target.strict)
    eids = [_eid_of(event) or "" for event in events]
    partitions: list[int] = []
    failures: dict[int, tuple[str, str]] = {}  # index → (step, detail)
    for index, event in enumerate(events):
        problem = validate(event, target.category, validator)
        if problem is not None:
            failures[index] = ("validating", problem)
            continue
        try:
            keyed = event["data"] if target.category == "data" else event
            if target.partition_strategy != "hash":
                keyed = event  # user_defined reads metadata.partition, at the root
            partitions.append(
                choose_partition(
                    keyed,
                    strategy=target.partition_strategy,
                    partition_count=target.partition_count,
                    key_fields=target.partition_key_fields,
                    eid=eids[index],
                )
            )
        except PartitioningError as error:
            failures[index] = ("partitioning", str(error))
    if failures:
        # As in Nakadi, validation comes first: a batch with an invalid event stopped there.
        steps = {step for step, _ in failures.values()}
        step = "validating" if "validating" in steps else "partitioning"
        items = [
            ItemResult(eid, "failed", *failures[index])
            if index in failures
            else ItemResult(eid, "aborted", step)
            for index, eid in enumerate(eids)
        ]
        return Prepared(items, [], {})

    received_at = rfc3339(datetime.now(UTC))
    names = [str(p) for p in range(target.partition_count)]
    grouped: dict[int, tuple[list[str], list[bytes]]] = defaultdict(lambda: ([], []))
    for index, (event, partition) in enumerate(zip(events, partitions, strict=True)):
        if target.enrich:
            metadata = event["metadata"]
            if not metadata.get("flow_id"):
                metadata["flow_id"] = flow_id
            metadata.update(
                received_at=received_at,
                event_type=target.name,
                partition=names[partition],
                version=target.schema_version,
                published_by=published_by,
            )
        payload = orjson.dumps(event)
        if len(payload) > max_event_bytes:
            _check_size(event, index, max_event_bytes)
        batch_eids, payloads = grouped[partition]
        batch_eids.append(eids[index])
        payloads.append(payload)
    batches = {
        p: streams.PartitionBatch(p, batch_eids, payloads)
        for p, (batch_eids, payloads) in grouped.items()
    }
    return Prepared([ItemResult(eid) for eid in eids], partitions, batches)


def _check_size(event: dict[str, Any], index: int, max_event_bytes: int) -> None:
    """EventTooLarge if the event as the producer sent it (not enriched) is over the limit."""
    original = dict(event)
    if isinstance(event.get("metadata"), dict):
        original["metadata"] = {k: v for k, v in event["metadata"].items() if k not in _ENRICHED}
    size = len(orjson.dumps(original))
    if size > max_event_bytes:
        raise EventTooLarge(index, size)


async def publish(
    events: Sequence[Any],
    target: Target,
    *,
    published_by: str,
    flow_id: str | None,
    max_event_bytes: int,
    dedup_seconds: int,
) -> Outcome:
    """Publish a batch; see the module's docstring for what each outcome means."""
    prepared = prepare(
        events,
        target,
        published_by=published_by,
        flow_id=flow_id or str(uuid.uuid4()),
        max_event_bytes=max_event_bytes,
    )
    items = prepared.items
    if not prepared.batches:
        return Outcome(422 if items else 200, items)
    ordered = list(prepared.batches.values())
    results = await streams.append(target.stream_id, ordered, target.retention, dedup_seconds)
    failed: dict[int, str] = {}
    for batch, result in zip(ordered, results, strict=True):
        if isinstance(result, Exception):
            logger.error(
                "storing %d events on %s/%d failed: %s",
                len(batch.payloads),
                target.name,
                batch.partition,
                result,
            )
            failed[batch.partition] = f"storing failed: {result}"
    for item, partition in zip(items, prepared.partitions, strict=True):
        if partition in failed:
            item.publishing_status, item.step = "failed", "publishing"
            item.detail = failed[partition]
        else:
            item.publishing_status, item.step = "submitted", "none"
    return Outcome(207 if failed else 200, items)
