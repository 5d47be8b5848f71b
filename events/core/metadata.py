"""Nakadi's event metadata: what a producer may send, the eid that names a stored event, and
the compaction key of a compacted type's event. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


def eid_of(event: Any) -> str | None:
    """The event's eid when it is a UUID (only those name de-duplication keys)."""
    metadata = event.get("metadata") if isinstance(event, Mapping) else None
    eid = metadata.get("eid") if isinstance(metadata, Mapping) else None
    return eid if isinstance(eid, str) and UUID_RE.match(eid) else None


# Nakadi's cleanup policies; the compacted ones keep the latest event of each
# `metadata.partition_compaction_key` per partition (events/store/compaction.py).
CLEANUP_POLICIES = ("delete", "compact", "compact_and_delete")
COMPACTED = frozenset({"compact", "compact_and_delete"})


def compaction_key_of(event: Any) -> str:
    """The compaction key of a valid event of a compacted type (its metadata names one)."""
    return str(event["metadata"]["partition_compaction_key"])


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
        # Streamsite's own: subscriptions may filter on it (events.core.topics).
        "topic": {"type": "string", "minLength": 1, "maxLength": 255},
    },
}
# A compacted type's events must name their compaction key (Nakadi's schema of `compact`
# and `compact_and_delete`). A `delete` type accepts one and ignores it, where Nakadi refuses
# it: producers may send it before their type turns to `compact_and_delete`.
COMPACTED_METADATA_SCHEMA = {
    **METADATA_SCHEMA,
    "required": ["eid", "occurred_at", "partition_compaction_key"],
}
