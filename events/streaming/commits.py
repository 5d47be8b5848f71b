"""Committing cursors of an ordered subscription, for the cursors endpoint and the WebSocket.

A commit is cumulative per partition: it acks, in Redis and fenced by the session's lease,
every pending entry up to the offset, then records the offset in the database. Every
cursor is checked before any is committed, so a refused request changes nothing (unless a
lease moves between the check and the commit: then what was committed is stored, and the
rest refused).

A commit of one partition is one script call: its lease names a live session or is gone
(a lease expires with its session), so nothing else needs reading first. A commit of
several partitions first reads their leases in one round trip, since no script can span
partitions. Only a refusal asks whether the session is live, to say why. The session is
told of its commit directly when it runs in this process, else through Redis.
"""

from __future__ import annotations

from typing import Any

from events.catalog import committed_writer
from events.core.offsets import BEGIN, Cursor, parse_offset
from events.core.plan import Partition, Plan
from events.core.problems import Problem
from events.store import ordered_delivery
from events.store.connections import async_redis_client
from events.store.leases import Leases
from events.store.sessions import Sessions
from events.streaming import local

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
    targets = []
    for cursor in cursors:
        partition = plan.find((cursor.event_type, cursor.partition))
        assert partition is not None  # parse_cursor checked it
        targets.append((cursor, partition))
    if len(targets) > 1:
        await _check_leases(plan, session, targets)
    calls = [
        (plan.subscription, session, partition.store_id, partition.partition, cursor.offset)
        for cursor, partition in targets
    ]
    own = local.find(session)
    replies = await ordered_delivery.commit_all(client, calls, publish=own is None)
    results = [reply.result for reply in replies]
    for (cursor, partition), reply in zip(targets, replies, strict=True):
        if reply.offset is None:
            # Refused, on the lease of a partition the check above found ours (if there
            # were several): it moved since. Store what Redis did commit, then refuse (the
            # client's retry of those is answered `outdated`).
            await record(plan, cursors, results)
            raise Problem(422, await _refusal(plan, session, cursor, reply.result))
        if own is not None:
            own.on_commit(partition.store_id, partition.partition, reply.offset)
    return results


async def _check_leases(plan: Plan, session: str, targets: list[tuple[Cursor, Partition]]) -> None:
    """Refuse (422) before anything is committed unless the session holds each partition's
    lease and was sent each offset.
    """
    partitions = [(p.store_id, p.partition) for _, p in targets]
    leases = await Leases(async_redis_client()).holdings(partitions, plan.subscription)
    for (cursor, _), (holder, sent) in zip(targets, leases, strict=True):
        if holder != session:
            raise Problem(422, await _refusal(plan, session, cursor, "not_owner"))
        if cursor.position > parse_offset(sent or BEGIN):
            raise Problem(422, await _refusal(plan, session, cursor, "undelivered"))


async def _refusal(plan: Plan, session: str, cursor: Cursor, result: str) -> str:
    where = f"partition {cursor.partition} of {cursor.event_type!r}"
    if result == "not_owner":
        if not await Sessions(async_redis_client()).is_live(plan.subscription, session):
            return f"Stream {session!r} is not a live session of this subscription."
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
