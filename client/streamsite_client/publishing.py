"""Publishing, the pure part: metadata filled in, batches cut, and each answer sorted into
what is stored, what to retry and what failed for good (README.md, "Publishing guarantees").
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from streamsite_client.errors import FailedEvent


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def prepare(event: Any) -> Any:
    """A copy of `event` with `metadata.eid` (uuid4) and `metadata.occurred_at` filled in
    when missing. Only events with a `metadata` object (business and data categories)
    are touched: an undefined-category event is sent as it is.
    """
    if not isinstance(event, dict) or not isinstance(event.get("metadata"), dict):
        return event
    metadata = dict(event["metadata"])
    metadata.setdefault("eid", str(uuid.uuid4()))
    metadata.setdefault("occurred_at", now_rfc3339())
    return {**event, "metadata": metadata}


def eid_of(event: Any) -> str:
    metadata = event.get("metadata") if isinstance(event, dict) else None
    return str(metadata.get("eid", "")) if isinstance(metadata, dict) else ""


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class Pending:
    """Events of one call still to store, each with its index in the caller's sequence."""

    indexed: list[tuple[int, Any]]

    @classmethod
    def of(cls, events: Iterable[Any], first_index: int = 0) -> Pending:
        return cls([(first_index + i, prepare(e)) for i, e in enumerate(events)])

    @property
    def events(self) -> list[Any]:
        return [event for _, event in self.indexed]

    def failures(self, detail: str) -> list[FailedEvent]:
        """Every pending event, failed with the client's last error."""
        return [FailedEvent(i, eid_of(e), "failed", "publishing", detail) for i, e in self.indexed]


@dataclass
class Verdict:
    """What an answer means: `retry` the pending events left to store (empty when done),
    `refused` the events failed for good (422), `stored` how many were stored now.
    """

    stored: int
    retry: Pending = field(default_factory=lambda: Pending([]))
    refused: list[FailedEvent] = field(default_factory=list)


def judge(status: int, body: Any, pending: Pending) -> Verdict | None:
    """Sort a publishing answer; None for an answer that is no verdict on the events
    (a 5xx: retry them all; another error: the caller raises it).
    """
    if status == 200:
        return Verdict(stored=len(pending.indexed))
    items = body if isinstance(body, list) and len(body) == len(pending.indexed) else None
    if status == 207 and items is not None:
        # Only the events not submitted are retried; their eids are kept, so a retry of
        # one that was stored after all is answered as submitted and not stored again.
        left = [
            pair
            for pair, item in zip(pending.indexed, items, strict=True)
            if item.get("publishing_status") != "submitted"
        ]
        return Verdict(stored=len(pending.indexed) - len(left), retry=Pending(left))
    if status == 422 and items is not None:
        # The whole batch was refused; "aborted" ones are refused only for the others.
        refused = [
            FailedEvent(
                index,
                eid_of(event) or str(item.get("eid", "")),
                str(item.get("publishing_status", "")),
                str(item.get("step", "")),
                str(item.get("detail", "")),
            )
            for (index, event), item in zip(pending.indexed, items, strict=True)
            if item.get("publishing_status") != "aborted"
        ]
        return Verdict(stored=0, refused=refused or pending.failures("refused"))
    return None


def retryable(status: int) -> bool:
    """5xx (and 429): the whole batch may be sent again, safely by eid."""
    return status >= 500 or status == 429
