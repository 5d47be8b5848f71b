"""Committing cursors of an ordered subscription, for the cursors endpoint and the WebSocket.

A commit is cumulative per partition: it acks, in Redis and fenced by the session's lease,
every pending entry up to the offset, then records the offset in the database. Every
cursor is checked before any is committed, so a refused request changes nothing.
"""

from __future__ import annotations

from typing import Any

from events import committed, delivery
from events.connections import redis_client
from events.cursors import Cursor, parse_offset
from events.delivery import committed_key
from events.leases import lease_key
from events.models import EventType
from events.plans import Plan
from events.problems import Problem
from events.sessions import sessions_key

COMMITTED = "committed"
OUTDATED = "outdated"


def parse_items(plan: Plan, body: Any) -> list[Cursor]:
    """The cursors of a `{"items": [...]}` body; 422 for anything malformed."""
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise Problem(422, 'The body must be {"items": [cursor, ...]} with at least one cursor.')
    return [plan.parse_cursor(item) for item in items]


def commit(plan: Plan, session: str, cursors: list[Cursor]) -> list[str]:
    """Commit each cursor for `session` (the X-Nakadi-StreamId); returns per cursor
    "committed" or "outdated"; 422 (nothing committed) when the session is unknown, does
    not own a partition or never received an offset.
    """
    client = redis_client()
    if client.zscore(sessions_key(plan.subscription), session) is None:
        raise Problem(422, f"Stream {session!r} is not a live session of this subscription.")
    targets = []
    for cursor in cursors:
        partition = plan.find((cursor.event_type, cursor.partition))
        assert partition is not None  # parse_cursor checked it
        targets.append((cursor, partition))
    pipe = client.pipeline(transaction=False)
    for _, partition in targets:
        pipe.hmget(
            lease_key(partition.stream, partition.partition, plan.subscription), "session", "sent"
        )
    for (cursor, _), (holder, sent) in zip(targets, pipe.execute(), strict=True):
        _check(cursor, session, holder, sent)
    results = []
    for cursor, partition in targets:
        result = delivery.commit(
            client, plan.subscription, session, partition.stream, partition.partition, cursor.offset
        )
        if result not in (COMMITTED, OUTDATED):  # the lease moved since the check above
            raise Problem(422, _refusal(cursor, result))
        results.append(result)
    return results


def _check(cursor: Cursor, session: str, holder: bytes | None, sent: bytes | None) -> None:
    if holder is None or holder.decode() != session:
        raise Problem(422, _refusal(cursor, "not_owner"))
    if sent is not None and cursor.position > parse_offset(sent.decode()):
        raise Problem(422, _refusal(cursor, "undelivered"))


def _refusal(cursor: Cursor, result: str) -> str:
    where = f"partition {cursor.partition} of {cursor.event_type!r}"
    if result == "not_owner":
        return f"The stream does not own {where}; only its owner may commit it."
    return f"Offset {cursor.offset} of {where} was never sent to this stream."


def record(plan: Plan, cursors: list[Cursor], results: list[str]) -> None:
    """Store the committed cursors in the database (the durable position)."""
    types = {
        et.name: et for et in EventType.objects.filter(name__in={c.event_type for c in cursors})
    }
    for cursor, result in zip(cursors, results, strict=True):
        if result == COMMITTED:
            committed.record(
                plan.subscription, types[cursor.event_type], cursor.partition, cursor.offset
            )


def render(body: Any, cursors: list[Cursor], results: list[str]) -> dict[str, Any]:
    """Nakadi's 200 body: each cursor, with the cursor_token the client sent, and its result."""
    items = body["items"]
    return {
        "items": [
            {"cursor": {**cursor.as_json(), "cursor_token": _token(item)}, "result": result}
            for cursor, item, result in zip(cursors, items, results, strict=True)
        ]
    }


def _token(item: dict[str, Any]) -> str:
    token = item.get("cursor_token", "")
    return token if isinstance(token, str) else ""


def committed_offsets(plan: Plan) -> dict[tuple[str, int], str | None]:
    """The committed offset Redis holds for each partition (None where it has none yet)."""
    pipe = redis_client().pipeline(transaction=False)
    for p in plan.partitions:
        pipe.get(committed_key(p.stream, p.partition, plan.subscription))
    return {
        p.position: None if raw is None else raw.decode()
        for p, raw in zip(plan.partitions, pipe.execute(), strict=True)
    }
