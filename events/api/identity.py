"""Who is calling, for every API path (README, "Browsers"; docs/architecture.md,
"Authentication"). One rule for views, the paths that skip Django, and the streams:

1. `Authorization: Bearer <API token>` (services); no CSRF check.
2. `access_token=<stream token>` in the query string of a stream (GET, or a WebSocket):
   other origins, where a browser cannot send a header. An API token is never accepted
   there (it would end up in access logs), and a stream token nowhere else.
3. The Django session cookie (same-origin pages): POST, PUT, PATCH and DELETE need
   Django's CSRF token, and a WebSocket the page's own origin.
4. None of these: 401.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse
from django.http.cookie import parse_cookie
from django.middleware.csrf import CsrfViewMiddleware

from events.catalog import snapshots, stream_tokens, users
from events.catalog.auth import UNAUTHORIZED_HEADERS, Principal, authenticate
from events.core.problems import Problem
from events.models import TOKEN_PREFIX

BEARER, STREAM, SESSION = "bearer", "stream", "session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def credential(
    authorization: str | None,
    access_token: str | None,
    session_key: str | None,
    *,
    stream: bool,
) -> tuple[str, str]:
    """Which credential a request authenticates with, and its value; 401 saying why when
    there is none it may use. `stream`: the request opens a stream (GET or WebSocket).
    """
    if authorization:
        return BEARER, authorization
    if access_token is not None:
        if access_token.startswith(TOKEN_PREFIX):
            raise Problem(
                401,
                "An API token is never accepted in a URL: URLs end up in access logs. Send "
                "it as 'Authorization: Bearer <token>', or mint a short-lived stream token "
                "(POST /api/stream-tokens) for access_token.",
                headers=UNAUTHORIZED_HEADERS,
            )
        if not stream:
            raise Problem(
                401,
                "A stream token (access_token) opens streams only (GET or WebSocket); send "
                "an API token as 'Authorization: Bearer <token>' for other calls.",
                headers=UNAUTHORIZED_HEADERS,
            )
        return STREAM, access_token
    if session_key:
        return SESSION, session_key
    raise Problem(
        401,
        "Send an API token as 'Authorization: Bearer <token>' (or sign in: same-origin "
        "pages use the session; streams from other origins take a stream token).",
        headers=UNAUTHORIZED_HEADERS,
    )


async def principal_of_request(request: HttpRequest) -> Principal:
    """The caller of an API request (async views, and `events.api.routing.AsyncView`)."""
    kind, value = _of_request(request)
    if kind == BEARER:
        return await snapshots.principal(value)
    found = await snapshots.session_principal(value)
    check_csrf(request)
    return found


def principal_of_request_sync(request: HttpRequest) -> Principal:
    """The caller of an API request, for synchronous views (no cache: they hold a thread
    and a connection already).
    """
    kind, value = _of_request(request)
    if kind == BEARER:
        return authenticate(value)
    found = users.principal_of_session(value)
    check_csrf(request)
    return found


async def principal_of_scope(scope: dict[str, Any], consumes: bool = False) -> Principal:
    """The caller of a stream (a Channels consumer's ASGI scope: headers, cookies, query
    string). A stream token's principal carries its scope and `expires_at`: the stream
    ends when it expires. A stream that `consumes` (a subscription's: it takes partitions
    and charges deliveries) is refused to a signed-in browser on another site's behalf: a
    top-level navigation carries the session cookie.
    """
    headers = _headers(scope.get("headers", ()))
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    is_socket = scope.get("type") == "websocket"
    kind, value = credential(
        headers.get("authorization"),
        query.get("access_token"),
        parse_cookie(headers.get("cookie", "")).get(settings.SESSION_COOKIE_NAME),
        stream=is_socket or scope.get("method") == "GET",
    )
    if kind == BEARER:
        return await snapshots.principal(value)
    if kind == STREAM:
        claims = stream_tokens.verify(value)
        found = await snapshots.subject_principal(claims.subject)
        return dataclasses.replace(found, scope=claims.scope, expires_at=claims.expires_at)
    found = await snapshots.session_principal(value)
    if consumes and headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        raise Problem(403, "A signed-in subscription stream must be opened by this site.")
    if is_socket:
        check_origin(scope)
    elif scope.get("method") not in SAFE_METHODS:
        check_csrf(ASGIRequest(scope, io.BytesIO(b"")))
    return found


def check_csrf(request: HttpRequest) -> None:
    """Django's own CSRF check of a session-authenticated request; 403 saying why."""
    if request.method in SAFE_METHODS:
        return
    _csrf.process_request(request)
    _csrf.process_view(request, _protected, (), {})


def check_origin(scope: dict[str, Any]) -> None:
    """A session-authenticated WebSocket must come from the site's own origin (or one of
    CSRF_TRUSTED_ORIGINS): browsers send cookies on cross-site WebSocket handshakes, and
    CORS does not apply to them.
    """
    secure = scope.get("scheme") in ("wss", "https")
    request = ASGIRequest(
        {**scope, "type": "http", "method": "GET", "scheme": "https" if secure else "http"},
        io.BytesIO(b""),
    )
    origin = request.META.get("HTTP_ORIGIN")
    if origin is not None and not _csrf.origin_verified(request):
        raise Problem(403, f"A signed-in WebSocket must come from this site, not {origin}.")


class _Csrf(CsrfViewMiddleware):
    """Django's CSRF middleware, answering a refusal with a problem instead of a page."""

    def _reject(self, request: HttpRequest, reason: str) -> HttpResponse:
        raise Problem(
            403,
            f"CSRF check failed: {reason} A signed-in page sends the csrftoken cookie's "
            "value in the X-CSRFToken header with POST, PUT, PATCH and DELETE.",
        )

    def origin_verified(self, request: HttpRequest) -> bool:
        """Whether the Origin header names this site or one of CSRF_TRUSTED_ORIGINS."""
        return bool(self._origin_verified(request))  # type: ignore[attr-defined]


def _protected(request: HttpRequest) -> HttpResponse:
    """The view the CSRF check is made for: one not exempt from it."""
    return HttpResponse()


_csrf = _Csrf(lambda request: HttpResponse())


def _of_request(request: HttpRequest) -> tuple[str, str]:
    return credential(
        request.headers.get("Authorization"),
        request.GET.get("access_token"),
        request.COOKIES.get(settings.SESSION_COOKIE_NAME),
        stream=False,
    )


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    return {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in raw}
