"""Preparing a batch of events for an event type: validate, partition, enrich. Pure; the
store is `events/streaming/publishing.py`.

Steps follow Nakadi's BatchItemResponse: a failure in validating, partitioning or
enriching aborts the whole batch (422, nothing stored).
"""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from events.core.metadata import (
    COMPACTED_METADATA_SCHEMA,
    METADATA_SCHEMA,
    compaction_key_of,
    eid_of,
)
from events.core.partitioning import PartitioningError, choose_partition
from events.core.schemas import Validator, compiled_validator, first_error, strict_schema
from events.core.times import rfc3339

logger = logging.getLogger(__name__)

DATA_OPS = frozenset({"C", "U", "D", "S"})
# What metadata enrichment sets; flow_id only where the producer sent none.
_ENRICHED = frozenset({"received_at", "event_type", "partition", "version", "published_by"})


@dataclass(frozen=True)
class Retention:
    max_events: int  # 0: unlimited
    max_age_ms: int  # 0: unlimited


@dataclass(frozen=True)
class PartitionBatch:
    """Events bound for one partition: (eid or '', encoded event) pairs, in order, and of a
    compacted type each event's compaction key (empty otherwise).
    """

    partition: int
    eids: Sequence[str]
    payloads: Sequence[bytes]
    keys: Sequence[str] = ()


@dataclass(frozen=True)
class Target:
    """What publishing needs to know of an event type: a plain snapshot, no ORM."""

    name: str
    store_id: str  # the event type's Redis key prefix (not its name)
    category: str
    partition_strategy: str
    partition_key_fields: Sequence[str]
    partition_count: int
    schema: str
    schema_version: str
    strict: bool  # compatible mode: undeclared fields are refused
    enrich: bool
    retention: Retention
    compacted: bool = False  # cleanup_policy compact or compact_and_delete
    # Nakadi's section as stored: its writers may publish (events/core/authorization.py).
    authorization: Mapping[str, Any] | None = field(default=None, hash=False)


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


_METADATA = compiled_validator(orjson.dumps(METADATA_SCHEMA).decode())
_COMPACTED_METADATA = compiled_validator(orjson.dumps(COMPACTED_METADATA_SCHEMA).decode())


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


def _metadata_error(metadata: Any, compacted: bool) -> str | None:
    if not isinstance(metadata, dict):
        return "metadata is required and must be an object"
    if "received_at" in metadata or "version" in metadata:
        return "metadata.received_at and metadata.version are set by the server"
    return first_error(_COMPACTED_METADATA if compacted else _METADATA, metadata, at="metadata")


def validate(
    event: Any, category: str, validator: Validator, compacted: bool = False
) -> str | None:
    """Why `event` is invalid for its category and schema (and for a `compacted` type, its
    metadata names no compaction key), or None when it is valid.
    """
    if not isinstance(event, dict):
        return "an event must be a JSON object"
    if category in ("business", "data"):
        problem = _metadata_error(event.get("metadata"), compacted)
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
    batches: dict[int, PartitionBatch]  # empty when the batch was refused


def prepare(
    events: Sequence[Any], target: Target, *, published_by: str, flow_id: str, max_event_bytes: int
) -> Prepared:
    """Validate, partition and enrich every event. On any failure the items say which
    events failed and no batch is returned; otherwise the encoded batches per partition.
    Raises EventTooLarge for an event over `max_event_bytes`.
    """
    validator = effective_validator(target.category, target.schema, target.strict)
    eids = [eid_of(event) or "" for event in events]
    partitions: list[int] = []
    failures: dict[int, tuple[str, str]] = {}  # index → (step, detail)
    for index, event in enumerate(events):
        problem = validate(event, target.category, validator, target.compacted)
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
    grouped: dict[int, tuple[list[str], list[bytes], list[str]]] = defaultdict(lambda: ([], [], []))
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
        batch_eids, payloads, keys = grouped[partition]
        batch_eids.append(eids[index])
        payloads.append(payload)
        if target.compacted:
            keys.append(compaction_key_of(event))
    batches = {
        p: PartitionBatch(p, batch_eids, payloads, keys)
        for p, (batch_eids, payloads, keys) in grouped.items()
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
