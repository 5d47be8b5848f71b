"""Readers, the pure part: the URL and parameters of a reader's stream (README.md, "Reading")."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote


def reader_request(
    event_types: Sequence[str],
    *,
    read_from: str | None,
    topics: Sequence[str],
    last_event_id: str | None,
    batch_limit: int | None = None,
) -> tuple[str, list[tuple[str, str]], dict[str, str]]:
    """The path, query and headers of an SSE reader: `GET /api/event-types/{name}/events`
    for one type by name, `GET /api/events?event_type=…` for several or for globs.
    """
    if not event_types:
        raise ValueError("name at least one event type")
    query: list[tuple[str, str]] = []
    single = len(event_types) == 1 and not any(c in event_types[0] for c in "*?[")
    if single:
        path = f"/api/event-types/{quote(event_types[0], safe='')}/events"
    else:
        path = "/api/events"
        query += [("event_type", name) for name in event_types]
    if read_from:
        query.append(("read_from", read_from))
    if topics:
        query.append(("topics", ",".join(topics)))
    if batch_limit:
        query.append(("batch_limit", str(batch_limit)))
    headers = {"Accept": "text/event-stream"}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    return path, query, headers
