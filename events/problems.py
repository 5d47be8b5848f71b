"""RFC 9457 problem details: every error the API gives is `application/problem+json`."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

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


class ProblemMiddleware(MiddlewareMixin):
    """Turns a raised `Problem`, and Django's own HTML errors under /api/, into problems."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, Problem):
            return exception.response()
        return None

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
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
