"""Nakadi's event metadata: what a producer may send, and the eid that names a stored event.
Pure.
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
