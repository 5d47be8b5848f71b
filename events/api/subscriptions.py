"""The REST API for subscriptions (Nakadi's contract): create once per identity, list,
read, change the authorization and annotations of, delete. Streaming and cursors build on these.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from events.api.decorators import api_view, principal_of
from events.api.http import json_response, paginate, read_json
from events.catalog import plans, subscriptions
from events.models import Subscription
from events.streaming import lifecycle


@api_view("GET", "POST")
def subscription_list(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        rows: QuerySet[Subscription] = Subscription.objects.prefetch_related("event_types")
        if owner := request.GET.get("owning_application"):
            rows = rows.filter(owning_application=owner)
        for name in _event_types(request):  # a subscription must have them all
            rows = rows.filter(event_types__name=name)
        return json_response(paginate(request, rows, subscriptions.render))
    body = subscriptions.parse(read_json(request))
    for event_type in body.event_types:
        principal_of(request).require("consume", event_type.name, event_type.authorization)
    subscription, created = subscriptions.create_or_get(body)
    location = f"/api/subscriptions/{subscription.id}"
    headers = {"Location": location}
    if created:
        headers["Content-Location"] = location
    return json_response(
        subscriptions.render(subscription), status=201 if created else 200, headers=headers
    )


def _event_types(request: HttpRequest) -> set[str]:
    """The `event_type` filter: repeated, comma-separated, or both, as Spring reads it for
    Nakadi (clin asks `event_type=a,b`)."""
    return {
        name for value in request.GET.getlist("event_type") for name in value.split(",") if name
    }


@api_view("GET", "PUT", "DELETE")
def subscription_detail(request: HttpRequest, subscription_id: str) -> HttpResponse:
    subscription = plans.get_subscription(subscription_id)
    if request.method == "GET":
        return json_response(subscriptions.render(subscription))
    plans.require_admin(principal_of(request), subscription)
    if request.method == "PUT":  # Nakadi's: change the authorization and annotations
        subscriptions.update(subscription, subscriptions.parse(read_json(request), subscription))
        return HttpResponse(status=204)
    with lifecycle.deleting([subscription]):
        subscription.delete()
    return HttpResponse(status=204)
