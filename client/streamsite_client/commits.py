"""Commits, the pure part: the request for a set of batches, the answer read, and the
committed cursors remembered for keep-alive commits (README.md, "Liveness is not progress").
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import httpx

from streamsite_client.errors import StreamsiteError
from streamsite_client.transport import body_of
from streamsite_client.wire import BEGIN, Batch, keep_alive_cursor


def path(subscription_id: str) -> str:
    return f"/api/subscriptions/{subscription_id}/cursors"


def request_of(
    items: Sequence[Batch | dict[str, str]], stream_id: str
) -> tuple[str, list[dict[str, str]]]:
    """The stream id and cursors to commit: a batch brings its own stream id, and only the
    last cursor of each partition is sent (commits are cumulative per partition).
    """
    latest: dict[tuple[str, str], dict[str, str]] = {}
    for item in items:
        if isinstance(item, Batch):
            stream_id = item.stream_id or stream_id
            cursor = item.cursor
        else:
            cursor = item
        latest[(cursor.get("event_type", ""), cursor["partition"])] = cursor
    if not latest:
        raise ValueError("nothing to commit")
    return stream_id, list(latest.values())


def results(response: httpx.Response, cursors: list[dict[str, str]]) -> list[dict[str, Any]] | None:
    """The result per cursor of a commit's 204 or 200; None for any other status."""
    if response.status_code == 204:
        return [{"cursor": cursor, "result": "committed"} for cursor in cursors]
    if response.status_code == 200:
        body = body_of(response)
        items = body.get("items") if isinstance(body, dict) else None
        return list(items) if isinstance(items, list) else []
    return None


def retryable(status: int) -> bool:
    """A status worth retrying: 5xx, 429, and 409 (no free partition, for a stream)."""
    return status >= 500 or status in (409, 429)


def close_error(reason: str | None) -> StreamsiteError:
    if reason is None:
        return StreamsiteError("the stream was cut without a close reason")
    return StreamsiteError(f"the stream closed with {reason}")


class Committed:
    """The offset last committed by each stream on each partition: a keep-alive commit
    sends it again (BEGIN, before everything, when the stream committed nothing there:
    also answered `outdated`).
    """

    def __init__(self) -> None:
        self._offsets: dict[tuple[str, str, str], str] = {}
        self._lock = threading.Lock()

    def record(self, stream_id: str, results: list[dict[str, Any]]) -> None:
        with self._lock:
            for item in results:
                cursor = item.get("cursor") or {}
                if item.get("result") == "committed" and "partition" in cursor:
                    key = (stream_id, cursor.get("event_type", ""), cursor["partition"])
                    self._offsets[key] = cursor["offset"]

    def keep_alive_cursor(self, batch: Batch) -> dict[str, str]:
        event_type, partition = batch.partition
        with self._lock:
            offset = self._offsets.get((batch.stream_id, event_type, partition), BEGIN)
        return keep_alive_cursor(batch.cursor, offset)
