"""The REST API for a subscription's position (Nakadi's contract): commit, read and reset
cursors, and stats.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from events import commits
from events.catalog import committed, plans
from events.catalog.auth import Principal, api_view, principal_of
from events.core.offsets import Cursor
from events.core.plan import Plan
from events.core.problems import Problem
from events.http import json_response, read_json
from events.store import sessions, stats, subscription_state
from events.store.connections import redis_client
from events.store.keys import control_channel, resetting_key

RESET_LOCK_SECONDS = 30  # a reset that died half-way stops blocking new sessions after this


@api_view("GET", "POST", "PATCH")
async def subscription_cursors(request: HttpRequest, subscription_id: str) -> HttpResponse:
    """Async, for the commit: it is the hot path of every consumer (one per batch or so),
    and needs no database read, only the write of the committed cursors. Served without
    Django's request handling (`events.routing.AsyncView`, see streamsite.asgi).
    """
    principal = principal_of(request)
    if request.method == "GET":
        return await sync_to_async(_cursors)(subscription_id, principal)
    if request.method == "PATCH":
        return await sync_to_async(_reset)(subscription_id, principal, read_json(request))
    return await commit(
        subscription_id, principal, request.headers.get("X-Nakadi-StreamId"), read_json(request)
    )


async def commit(
    subscription_id: str, principal: Principal, session: str | None, body: object
) -> HttpResponse:
    """POST …/cursors: commit for the stream `session`."""
    plan = await plans.cached(subscription_id, principal)
    if not session:
        raise Problem(422, "Send the stream's id in the X-Nakadi-StreamId header.")
    cursors = commits.parse_items(plan, body)
    results = await commits.commit(plan, session, cursors)
    await commits.record(plan, cursors, results)
    if all(result == commits.COMMITTED for result in results):
        return HttpResponse(status=204)
    return json_response(commits.render(body, cursors, results))


def _cursors(subscription_id: str, principal: Principal) -> HttpResponse:
    plan = plans.load(subscription_id, principal)
    items = [
        {"event_type": name, "partition": str(p), "offset": offset, "cursor_token": ""}
        for (name, p), offset in sorted(plan.offsets.items())
    ]
    return json_response({"items": items})


def _reset(subscription_id: str, principal: Principal, body: object) -> HttpResponse:
    plan = plans.load(subscription_id, principal)
    reset(plan, commits.parse_items(plan, body))
    return HttpResponse(status=204)


def reset(plan: Plan, cursors: list[Cursor]) -> None:
    """Close every session of the subscription with `cursor_reset`, then move the cursors
    (backwards too) and forget the Redis state of those partitions; 409 while another
    reset runs. New sessions are refused (409) until it is done.
    """
    client = redis_client()
    lock = resetting_key(plan.subscription)
    if not client.set(lock, "1", nx=True, ex=RESET_LOCK_SECONDS):
        raise Problem(409, "A cursor reset of this subscription is already in progress.")
    try:
        client.publish(control_channel(plan.subscription), "reset")
        sessions.forget(client, plan.subscription)
        partitions = [plan.find((c.event_type, c.partition)) for c in cursors]
        targets = [(p.stream, p.partition) for p in partitions if p is not None]
        # Redis first: should it fail, the database still has the old cursors, and the
        # groups of the next sessions are built from those, consistently.
        subscription_state.reset(client, plan.subscription, targets)
        committed.reset(plans.subscription(plan.subscription), cursors)
    finally:
        client.delete(lock)


@api_view("GET")
def subscription_stats(request: HttpRequest, subscription_id: str) -> HttpResponse:
    plan = plans.load(subscription_id, principal_of(request))
    show_time_lag = request.GET.get("show_time_lag", "false").lower() == "true"
    return json_response(stats.render(plan, stats.partition_stats(plan), show_time_lag))
