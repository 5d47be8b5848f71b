"""`POST /api/stream-tokens`: a short-lived token for a stream's URL (`access_token=`), for
browsers on other origins (events/catalog/stream_tokens.py; README, "Browsers").
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from events.api.decorators import api_view, principal_of
from events.api.http import json_response, read_json
from events.catalog import stream_tokens


@api_view("POST")
def stream_token_list(request: HttpRequest) -> HttpResponse:
    """201 `{"token", "expires_at"}`, scoped to what the body asks and the caller may do.
    Authenticated by an API token or the session (with its CSRF token), never by a stream
    token.
    """
    token, expires_at = stream_tokens.mint(principal_of(request), read_json(request))
    return json_response(
        {"token": token, "expires_at": stream_tokens.rfc3339(expires_at)}, status=201
    )
