"""The dashboard's pages and the JSON views they poll every second. Thin: parse, check
access (events/dashboard/access.py), call a data module, render.
"""

from __future__ import annotations

import logging
import time
import uuid

import redis
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST, require_safe

from events.catalog import dead_letters as dead_letter_rows
from events.dashboard import event_type, health, overview, subscription
from events.dashboard.access import problem, staff_json, staff_page
from events.models import DeadLetter, EventType, Subscription
from events.store.connections import redis_client

logger = logging.getLogger(__name__)


def _since(request: HttpRequest) -> int:
    """The `since` parameter: the time (ms) of the newest sample the page has; 0 if none."""
    try:
        return max(0, int(request.GET.get("since", "0")))
    except ValueError:
        return 0


def _redis_down(error: redis.RedisError) -> JsonResponse:
    logger.warning("dashboard: Redis is not answering: %s", error)
    return problem(503, f"Redis is not answering: {error}")


@require_safe
@staff_page
def overview_page(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/overview.html", {"title": "Overview"})


@require_safe
@staff_page
def event_type_page(request: HttpRequest, name: str) -> HttpResponse:
    found = get_object_or_404(EventType, name=name)
    context = {"title": found.name, "event_type": found}
    return render(request, "dashboard/event_type.html", context)


@require_safe
@staff_page
def subscription_page(request: HttpRequest, subscription_id: uuid.UUID) -> HttpResponse:
    found = get_object_or_404(
        Subscription.objects.prefetch_related("event_types"), pk=subscription_id
    )
    context = {
        "title": f"{found.owning_application}/{found.consumer_group}",
        "subscription": found,
        "event_types": sorted(et.name for et in found.event_types.all()),
        "may_replay": request.user.has_perm("events.change_deadletter"),
    }
    return render(request, "dashboard/subscription.html", context)


@require_safe
@staff_json
def overview_json(request: HttpRequest) -> HttpResponse:
    client = redis_client()
    try:
        types, newest = overview.event_types(client, _since(request))
        subscriptions = overview.subscriptions(client)
    except redis.RedisError as error:
        return _redis_down(error)
    now = int(time.time() * 1000)
    body = {
        "now": now,
        "newest_sample": newest,
        "event_types": types,
        "subscriptions": subscriptions,
        "health": health.health(now),
    }
    return JsonResponse(body)


@require_safe
@staff_json
def event_type_json(request: HttpRequest, name: str) -> HttpResponse:
    found = EventType.objects.filter(name=name).first()
    if found is None:
        return problem(404, f'Event type "{name}" does not exist.')
    try:
        return JsonResponse(event_type.page(redis_client(), found, _since(request)))
    except redis.RedisError as error:
        return _redis_down(error)


@require_safe
@staff_json
def subscription_json(request: HttpRequest, subscription_id: uuid.UUID) -> HttpResponse:
    found = Subscription.objects.prefetch_related("event_types").filter(pk=subscription_id).first()
    if found is None:
        return problem(404, f'Subscription "{subscription_id}" does not exist.')
    try:
        # An event's body is data: shown to whoever may view dead letters in the admin.
        bodies = request.user.has_perm("events.view_deadletter") or request.user.has_perm(
            "events.change_deadletter"
        )
        return JsonResponse(subscription.page(redis_client(), found, _since(request), bodies))
    except redis.RedisError as error:
        return _redis_down(error)


@require_POST
@staff_json
def replay_dead_letter(request: HttpRequest, pk: int) -> HttpResponse:
    """Deliver a dead letter again to its subscription (as the admin's replay): 200 with its
    new offset, 409 when it was replayed already. Needs CSRF, as every POST of a page, and
    the admin's permission to change dead letters.
    """
    if not request.user.has_perm("events.change_deadletter"):
        return problem(403, "Replaying needs the permission to change dead letters.")
    found = DeadLetter.objects.select_related("event_type", "subscription").filter(pk=pk).first()
    if found is None:
        return problem(404, f"Dead letter {pk} does not exist.")
    try:
        offset = dead_letter_rows.replay(found)
    except redis.RedisError as error:
        return _redis_down(error)
    if offset is None:
        return problem(409, f"Dead letter {pk} was replayed already.")
    logger.info("dead letter %s replayed by %s at offset %s", pk, request.user, offset)
    return JsonResponse({"id": pk, "offset": offset, "status": found.status})
