"""The REST API for a subscription's position (Nakadi's contract): commit, read and reset
cursors, and stats.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from events.api.decorators import api_view, principal_of
from events.api.http import json_response, read_json
from events.catalog import plans
from events.catalog.auth import Principal
from events.core.problems import Problem
from events.store import stats
from events.streaming import commits, lifecycle


@api_view("GET", "POST", "PATCH")
async def subscription_cursors(request: HttpRequest, subscription_id: str) -> HttpResponse:
    """Async, for the commit: it is the hot path of every consumer (one per batch or so),
    and needs no database read, only the write of the committed cursors. Served without
    Django's request handling (`events.api.routing.AsyncView`, see streamsite.asgi).
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
    plan = plans.load(subscription_id, principal, admin=True)
    lifecycle.reset_cursors(plan, commits.parse_items(plan, body))
    return HttpResponse(status=204)


@api_view("GET")
def subscription_stats(request: HttpRequest, subscription_id: str) -> HttpResponse:
    flag = request.GET.get("show_time_lag", "false").lower()
    if flag not in ("true", "false"):  # as Nakadi (Spring) parses a boolean
        raise Problem(422, f"show_time_lag must be true or false, not {flag[:32]!r}.")
    plan = plans.load(subscription_id, principal_of(request))
    return json_response(stats.render(plan, stats.partition_stats(plan), flag == "true"))
