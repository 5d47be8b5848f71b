"""Committing cursors of an ordered subscription, for the cursors endpoint and the WebSocket.

A commit is cumulative per partition: it acks, in Redis and fenced by the session's lease,
every pending entry up to the offset, then records the offset in the database. Every
cursor is checked before any is committed, so a refused request changes nothing.
"""

from __future__ import annotations

from typing import Any

from events.catalog import committed_writer
from events.core.offsets import Cursor, parse_offset
from events.core.plan import Plan
from events.core.problems import Problem
from events.store import ordered_delivery
from events.store.connections import async_redis_client
from events.store.keys import lease_key, sessions_key

COMMITTED = "committed"
OUTDATED = "outdated"


def parse_items(
    plan: Plan, body: Any, *, noun: str = "cursor", limit: int | None = None
) -> list[Cursor]:
    """The cursors of a `{"items": [...]}` body (of commits, or of shared acks: `noun`
    says which); 422 for anything malformed or for more than `limit` items.
    """
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise Problem(422, f'The body must be {{"items": [{noun}, ...]}} with at least one {noun}.')
    if limit is not None and len(items) > limit:
        raise Problem(422, f"At most {limit} {noun}s per request.")
    return [plan.parse_cursor(item) for item in items]


async def commit(plan: Plan, session: str, cursors: list[Cursor]) -> list[str]:
    """Commit each cursor for `session` (the X-Nakadi-StreamId); returns per cursor
    "committed" or "outdated"; 422 (nothing committed) when the session is unknown, does
    not own a partition or never received an offset.
    """
    if plan.shared:
        raise Problem(
            422,
            "A shared subscription has no cursors to commit: acknowledge each event with "
            "POST /api/subscriptions/{id}/acks.",
        )
    client = async_redis_client()
    if await client.zscore(sessions_key(plan.subscription), session) is None:
        raise Problem(422, f"Stream {session!r} is not a live session of this subscription.")
    targets = []
    for cursor in cursors:
        partition = plan.find((cursor.event_type, cursor.partition))
        assert partition is not None  # parse_cursor checked it
        targets.append((cursor, partition))
    async with client.pipeline(transaction=False) as pipe:
        for _, partition in targets:
            pipe.hmget(
                lease_key(partition.store_id, partition.partition, plan.subscription),
                "session",
                "sent",
            )
        leases = await pipe.execute()
    for (cursor, _), (holder, sent) in zip(targets, leases, strict=True):
        _check(cursor, session, holder, sent)
    calls = [
        (plan.subscription, session, partition.store_id, partition.partition, cursor.offset)
        for cursor, partition in targets
    ]
    results = await ordered_delivery.commit_all(client, calls)
    for (cursor, _), result in zip(targets, results, strict=True):
        if result not in (COMMITTED, OUTDATED):
            # The lease moved since the check above: store what Redis did commit, then
            # refuse (the client's retry of those is answered `outdated`).
            await record(plan, cursors, results)
            raise Problem(422, _refusal(cursor, result))
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


async def record(plan: Plan, cursors: list[Cursor], results: list[str]) -> None:
    """Store the committed cursors in the database (the durable position); returns once
    they are stored.
    """
    done = [c for c, result in zip(cursors, results, strict=True) if result == COMMITTED]
    if done:
        await committed_writer.writer().write(plan.subscription, done)


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
