"""THE PEER's publish endpoint: the request's JSON object becomes one django-eventstream event."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from django_eventstream import send_event


def publish(request: HttpRequest) -> HttpResponse:
    """POST a JSON object: `send_event("bench", "message", it)` (a Redis PUBLISH); 204."""
    if request.method != "POST":
        return HttpResponse(status=405)
    send_event("bench", "message", json.loads(request.body))
    return HttpResponse(status=204)
