"""`POST /api/subscriptions/{id}/acks`: a shared subscription's client acknowledges events
one by one (events/streaming/acks.py).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from events.api.decorators import api_view, principal_of
from events.api.http import json_response, read_json
from events.catalog import plans
from events.store import shared_delivery
from events.streaming import acks


@api_view("POST")
async def subscription_acks(request: HttpRequest, subscription_id: str) -> HttpResponse:
    """204 when every event was acked; 200 with a result per item otherwise. Served
    without Django's request handling, as commits are (`events.api.routing.AsyncView`).
    """
    plan = await plans.cached(subscription_id, principal_of(request))
    body = read_json(request)
    results = await acks.acknowledge(plan, body)
    if all(item["result"] == shared_delivery.ACKED for item in results):
        return HttpResponse(status=204)
    return json_response({"items": results})
