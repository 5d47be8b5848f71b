"""Middleware: problems for every API error, and Django's stock middleware for pages only
(API, probe and metrics requests pass through it).

Under ASGI, `MiddlewareMixin` runs every `process_request`/`process_response` hook through
`sync_to_async`, so the seven stock middlewares cost an API call a dozen thread hops
(bench/README.md) for sessions, CSRF and messages the token-authenticated API never uses.
Each class here is the stock one for every other path, so the admin's checks find them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.contrib.auth.middleware import AuthenticationMiddleware as _Authentication
from django.contrib.messages.middleware import MessageMiddleware as _Message
from django.contrib.sessions.middleware import SessionMiddleware as _Session
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware as _XFrameOptions
from django.middleware.common import CommonMiddleware as _Common
from django.middleware.csrf import CsrfViewMiddleware as _CsrfView
from django.middleware.security import SecurityMiddleware as _Security

from events.api.http import problem_response, response_of
from events.core.problems import Problem

# Token-authenticated API calls, load balancers' probes and Prometheus's scrapes of
# /metrics: no sessions, CSRF or messages. A scraper sends a bearer token at most, never a
# cookie, so session and auth middleware only cost it thread hops on every scrape; it is
# GET only (no CSRF); the host check still applies (AllowedHostsMiddleware).
MACHINE_PATHS = ("/api/", "/health/", "/metrics")


class PagesOnly:
    """Mixed in before a `MiddlewareMixin` middleware: skip it for API and probe requests."""

    get_response: Any

    def __call__(self, request: HttpRequest) -> Any:
        if request.path.startswith(MACHINE_PATHS):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


class AllowedHostsMiddleware:
    """ALLOWED_HOSTS for API and probe requests too (CommonMiddleware, which checks it for
    pages, is skipped for them): DisallowedHost answers 400.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        request.get_host()  # raises DisallowedHost for a host not in ALLOWED_HOSTS
        return self.get_response(request)


class SecurityMiddleware(PagesOnly, _Security):
    pass


class SessionMiddleware(PagesOnly, _Session):
    pass


class CommonMiddleware(PagesOnly, _Common):
    pass


class CsrfViewMiddleware(PagesOnly, _CsrfView):
    pass


class AuthenticationMiddleware(PagesOnly, _Authentication):
    pass


class MessageMiddleware(PagesOnly, _Message):
    pass


class XFrameOptionsMiddleware(PagesOnly, _XFrameOptions):
    pass


class ProblemMiddleware:
    """Turns a raised `Problem`, and Django's own HTML errors under /api/, into problems.

    Native sync and async (not `MiddlewareMixin`, which would hop threads for each hook).
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self._acall(request)
        return as_problem(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        return as_problem(request, await self.get_response(request))

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, Problem):
            return response_of(exception)
        return None


def as_problem(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """Django's own error pages under /api/ (404, 405, 500) as problems; else `response`."""
    if not request.path.startswith("/api/") or response.status_code < 400:
        return response
    if "json" in response.get("Content-Type", ""):
        return response  # a problem already, or a JSON error body such as publishing's 422
    detail = {
        404: f"No resource at {request.path}.",
        405: f"{request.method} is not allowed on {request.path}.",
    }.get(response.status_code, "The server could not complete the request.")
    converted = problem_response(response.status_code, detail)
    if "Allow" in response:
        converted["Allow"] = response["Allow"]
    return converted
