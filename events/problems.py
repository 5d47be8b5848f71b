"""RFC 9457 problem details: every error the API gives is `application/problem+json`."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import orjson
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

PROBLEM_CONTENT_TYPE = "application/problem+json"


class Problem(Exception):
    """Raised anywhere below a view to answer with a problem; nothing is changed by it."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers or {}
        self.extra = extra

    def response(self) -> HttpResponse:
        return problem_response(
            self.status, self.detail, title=self.title, headers=self.headers, **self.extra
        )


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> HttpResponse:
    body = {
        "type": f"https://httpstatuses.io/{status}",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    response = HttpResponse(orjson.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


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
            return exception.response()
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
