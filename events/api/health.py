"""Liveness and readiness probes for load balancers and Kubernetes."""

from __future__ import annotations

import redis
from django.db import connection
from django.http import HttpRequest, JsonResponse

from events.api.decorators import safe_view
from events.store import connections
from events.streaming import draining


@safe_view
def live(request: HttpRequest) -> JsonResponse:
    """The process is up and answering."""
    return JsonResponse({"status": "ok"})


@safe_view
def ready(request: HttpRequest) -> JsonResponse:
    """Redis and the database answer: this server can take traffic."""
    checks = {}
    try:
        connections.ping()
        checks["redis"] = "ok"
    except redis.RedisError as error:
        checks["redis"] = f"error: {error}"
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as error:  # any driver's error means "not ready"
        checks["database"] = f"error: {error}"
    if draining.is_draining():
        checks["server"] = "draining: it is shutting down"
    ok = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if ok else "unavailable", **checks}, status=200 if ok else 503
    )
