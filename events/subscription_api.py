"""The REST API for subscriptions (Nakadi's contract): create once per identity, list,
read, delete. Streaming and cursors build on these.
"""

from __future__ import annotations

import uuid

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from events import subscriptions
from events.auth import Principal, api_view, principal_of
from events.http import json_response, paginate, read_json
from events.models import Subscription
from events.problems import Problem


def _subscription(subscription_id: str) -> Subscription:
    missing = Problem(404, f'Subscription "{subscription_id}" does not exist.')
    try:
        key = uuid.UUID(subscription_id)
    except ValueError:
        raise missing from None
    found = Subscription.objects.prefetch_related("event_types").filter(pk=key).first()
    if found is None:
        raise missing
    return found


def _require_consume(principal: Principal, names: list[str]) -> None:
    for name in names:
        principal.require("consume", name)


@api_view("GET", "POST")
def subscription_list(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        rows: QuerySet[Subscription] = Subscription.objects.prefetch_related("event_types")
        if owner := request.GET.get("owning_application"):
            rows = rows.filter(owning_application=owner)
        for name in request.GET.getlist("event_type"):  # a subscription must have them all
            rows = rows.filter(event_types__name=name)
        return json_response(paginate(request, rows, subscriptions.render))
    body = subscriptions.parse(read_json(request))
    _require_consume(principal_of(request), [et.name for et in body.event_types])
    subscription, created = subscriptions.create_or_get(body)
    location = f"/api/subscriptions/{subscription.id}"
    headers = {"Location": location}
    if created:
        headers["Content-Location"] = location
    return json_response(
        subscriptions.render(subscription), status=201 if created else 200, headers=headers
    )


@api_view("GET", "DELETE")
def subscription_detail(request: HttpRequest, subscription_id: str) -> HttpResponse:
    subscription = _subscription(subscription_id)
    if request.method == "GET":
        return json_response(subscriptions.render(subscription))
    _require_consume(principal_of(request), [et.name for et in subscription.event_types.all()])
    subscription.delete()
    return HttpResponse(status=204)
