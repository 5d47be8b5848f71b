"""Request parsing, JSON responses and problem responses shared by the API views."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from django.core.exceptions import RequestDataTooBig
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from events.core.problems import Problem, problem_body

JSON_CONTENT_TYPE = "application/json"
PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> HttpResponse:
    body = problem_body(status, detail, title=title, **extra)
    response = HttpResponse(orjson.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def response_of(problem: Problem) -> HttpResponse:
    """The response a raised `Problem` answers with."""
    return problem_response(
        problem.status,
        problem.detail,
        title=problem.title,
        headers=problem.headers,
        **problem.extra,
    )


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> HttpResponse:
    response = HttpResponse(orjson.dumps(data), status=status, content_type=JSON_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def read_json(request: HttpRequest) -> Any:
    """The request body as JSON: 415 for another content type, 413 too large, 400 malformed."""
    content_type = request.content_type or ""
    if content_type != JSON_CONTENT_TYPE and not content_type.endswith("+json"):
        raise Problem(415, f"The body must be {JSON_CONTENT_TYPE}, not {content_type or 'absent'}.")
    try:
        body = request.body
    except RequestDataTooBig:
        raise Problem(413, "The request body is larger than the server accepts.") from None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise Problem(400, f"The body is not valid JSON: {error}.") from None


def paginate(
    request: HttpRequest, rows: QuerySet[Any], render: Callable[[Any], Any]
) -> dict[str, Any]:
    """Nakadi's page of `rows`: `{items, _links: {prev?, next?}}` by `limit` and `offset`.

    The links keep the request's other query parameters; 400 for a bad limit or offset.
    """
    try:
        limit = int(request.GET.get("limit", 20))
        offset = int(request.GET.get("offset", 0))
    except ValueError:
        raise Problem(400, "limit and offset must be integers.") from None
    if not 1 <= limit <= 1000 or not 0 <= offset <= 10**9:
        raise Problem(400, "limit must be 1 to 1000 and offset 0 to 1000000000.")
    page = list(rows[offset : offset + limit + 1])

    def link(at: int) -> dict[str, str]:
        query = request.GET.copy()
        query["offset"], query["limit"] = str(at), str(limit)
        return {"href": f"{request.path}?{query.urlencode()}"}

    links = {}
    if offset > 0:
        links["prev"] = link(max(0, offset - limit))
    if len(page) > limit:
        links["next"] = link(offset + limit)
    return {"items": [render(row) for row in page[:limit]], "_links": links}


def header(scope: Any, name: bytes) -> str | None:
    """A request header of an ASGI scope (`name` in lower case), or None."""
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def asgi_headers(response: HttpResponse) -> list[tuple[bytes, bytes]]:
    """A response's headers as an ASGI message carries them."""
    return [(k.lower().encode(), v.encode()) for k, v in response.items()]
