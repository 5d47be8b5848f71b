"""Request parsing and JSON responses shared by the API views."""

from __future__ import annotations

from typing import Any

import orjson
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse

from events.problems import Problem

JSON_CONTENT_TYPE = "application/json"


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
