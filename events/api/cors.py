"""CORS on the paths that skip Django's middleware: the streams (Channels consumers) and
the hot paths (`events.api.routing.AsyncView`), wrapped around the ASGI routes in
streamsite/asgi.py.

The rules are django-cors-headers' own: its middleware, reading the same settings
(`CORS_*` in streamsite/settings.py), decides here what Django's copy of it decides for
the paths Django serves. This wrapper answers preflights, and adds the headers to a
response that does not carry them yet (a response from Django already does: its `Vary`
names `origin`).
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from typing import Any

from corsheaders.middleware import CorsMiddleware
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]


def _blank(request: HttpRequest) -> HttpResponse:
    return HttpResponse()


class Cors:
    """ASGI middleware: CORS by django-cors-headers' rules for an HTTP app; other
    protocols pass through (a WebSocket is not subject to CORS: events/api/identity.py
    checks the origin of a signed-in one).
    """

    _asgi_single_callable = True  # ASGI 3, although __call__ is not a coroutine function

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.rules = CorsMiddleware(_blank)

    def __call__(self, scope: Any, receive: Any, send: Any) -> Awaitable[None]:
        # Not a coroutine when there is nothing to add: a request without an Origin (a
        # same-origin call) keeps only its application's coroutine, for as long as it streams.
        if scope["type"] != "http" or not any(k.lower() == b"origin" for k, _ in scope["headers"]):
            return self.app(scope, receive, send)
        return self._cross_origin(scope, receive, send)

    async def _cross_origin(self, scope: Any, receive: Any, send: Any) -> None:
        request = ASGIRequest(scope, io.BytesIO(b""))
        preflight = self.rules.check_preflight(request)
        if preflight is not None:
            self.rules.add_response_headers(request, preflight)
            await send(
                {
                    "type": "http.response.start",
                    "status": preflight.status_code,
                    "headers": _items(preflight),
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        added = _items(self.rules.add_response_headers(request, HttpResponse()))
        if not any(key == b"vary" for key, _ in added):
            await self.app(scope, receive, send)  # not a path of the API (CORS_URLS_REGEX)
            return
        cors = [(k, v) for k, v in added if k.startswith(b"access-control-")]

        async def send_with_cors(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": with_cors(list(message["headers"]), cors)}
            await send(message)

        await self.app(scope, receive, send_with_cors)


def with_cors(headers: Headers, cors: Headers) -> Headers:
    """`headers` with the CORS headers `cors` and `Vary: origin`, unless they have them."""
    vary = [i for i, (key, _) in enumerate(headers) if key.lower() == b"vary"]
    if any(b"origin" in headers[i][1].lower() for i in vary):
        return headers  # decided already (by Django's copy of the middleware)
    if vary:
        key, value = headers[vary[0]]
        headers[vary[0]] = (key, value + b", origin")
    else:
        headers.append((b"vary", b"origin"))
    return headers + cors


def _items(response: HttpResponseBase) -> Headers:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.items()]
