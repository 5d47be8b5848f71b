"""The REST API for a subscription's dead letters (Streamsite's own; Nakadi has none):
list them, read, replay or discard one. Each call needs the `consume` grant on every event
type the subscription reads, as its cursors do.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from events.api.decorators import api_view, principal_of
from events.api.http import json_response, paginate
from events.catalog import dead_letters, plans
from events.core.problems import Problem
from events.core.times import rfc3339
from events.models import DeadLetter, Subscription


def render(dead_letter: DeadLetter) -> dict[str, Any]:
    """A dead letter as the API shows it; `event` is the event as published."""
    return {
        "id": dead_letter.pk,
        "event_type": dead_letter.event_type.name,
        "partition": str(dead_letter.partition),
        "offset": dead_letter.offset,
        "event": parse_event(dead_letter.body),
        "deliveries": dead_letter.deliveries,
        "reason": dead_letter.reason,
        "status": dead_letter.status,
        "created_at": rfc3339(dead_letter.created_at),
        "replayed_at": rfc3339(dead_letter.replayed_at) if dead_letter.replayed_at else None,
    }


def parse_event(body: str) -> Any:
    """The stored event as JSON; the text itself should it not be JSON (it always is when
    delivery stored it).
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body


def parse_status(value: str | None) -> str | None:
    """The `status` query parameter, checked; 422 for one that no dead letter has."""
    if value is None or value in DeadLetter.Status.values:
        return value
    choices = ", ".join(DeadLetter.Status.values)
    raise Problem(422, f'"status" must be one of {choices}, not {value!r}.')


def _subscription(request: HttpRequest, subscription_id: str) -> Subscription:
    """The subscription, if the caller may consume it: 404, then 403, otherwise."""
    subscription = plans.get_subscription(subscription_id)
    plans.require_consume(principal_of(request), subscription)
    return subscription


def _dead_letter(subscription: Subscription, dead_letter_id: int) -> DeadLetter:
    found = (
        DeadLetter.objects.select_related("event_type", "subscription")
        .filter(subscription=subscription, pk=dead_letter_id)
        .first()
    )
    if found is None:
        raise Problem(
            404, f"Subscription {subscription.pk} has no dead letter with id {dead_letter_id}."
        )
    return found


@api_view("GET")
def dead_letter_list(request: HttpRequest, subscription_id: str) -> HttpResponse:
    """GET …/dead-letters: newest first, a page at a time, optionally of one status."""
    subscription = _subscription(request, subscription_id)
    rows: QuerySet[DeadLetter] = DeadLetter.objects.filter(subscription=subscription)
    if status := parse_status(request.GET.get("status")):
        rows = rows.filter(status=status)
    rows = rows.select_related("event_type").order_by("-created_at", "-id")
    try:
        page = paginate(request, rows, render)
    except Problem as problem:
        if problem.status != 400:
            raise
        # `paginate` answers 400, as Nakadi's lists do; here every bad parameter is a 422.
        raise Problem(422, problem.detail) from None
    return json_response(page)


@api_view("GET", "DELETE")
def dead_letter_detail(
    request: HttpRequest, subscription_id: str, dead_letter_id: int
) -> HttpResponse:
    """GET: one dead letter; DELETE: discard it for good (204)."""
    dead_letter = _dead_letter(_subscription(request, subscription_id), dead_letter_id)
    if request.method == "GET":
        return json_response(render(dead_letter))
    dead_letters.discard([dead_letter])
    return HttpResponse(status=204)


@api_view("POST")
def dead_letter_replay(
    request: HttpRequest, subscription_id: str, dead_letter_id: int
) -> HttpResponse:
    """POST …/replay: append the event to its partition again, for this subscription only;
    200 with its new offset, 409 if it was replayed already.
    """
    dead_letter = _dead_letter(_subscription(request, subscription_id), dead_letter_id)
    offset = dead_letters.replay(dead_letter)
    if offset is None:
        raise Problem(409, f"Dead letter {dead_letter_id} was replayed already.")
    return json_response({"offset": offset})
