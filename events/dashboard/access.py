"""Who may see the dashboard: active staff users, logged in through the admin's login."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache

PROBLEM = "application/problem+json"

View = Callable[..., HttpResponse]


def problem(status: int, detail: str) -> JsonResponse:
    """An RFC 9457 problem, as the API answers bad requests."""
    titles = {403: "Forbidden", 404: "Not Found", 409: "Conflict", 503: "Service Unavailable"}
    body = {"type": "about:blank", "title": titles.get(status, ""), "status": status}
    return JsonResponse({**body, "detail": detail}, status=status, content_type=PROBLEM)


def staff_page(view: View) -> View:
    """A page: anyone but active staff is sent to the admin's login, then back."""
    return never_cache(staff_member_required(view))


def staff_json(view: View) -> View:
    """A JSON view polled by a page: anyone but active staff gets 403 (a redirect would
    only confuse `fetch`).
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not (user.is_active and user.is_staff):
            return problem(403, "The dashboard is for staff users: log in at /admin/login/.")
        return view(request, *args, **kwargs)

    return never_cache(wrapper)
