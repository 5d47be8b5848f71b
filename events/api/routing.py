"""ASGI routing helpers that Channels does not have."""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse

from events.api.cors import Cors
from events.api.http import asgi_headers, response_of
from events.core.problems import Problem
from events.streaming import draining

logger = logging.getLogger(__name__)

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]
AsyncViewFunction = Callable[..., Awaitable[HttpResponse]]


class ByMethod:
    """Send an HTTP request to the application for its method, else to `default`."""

    _asgi_single_callable = True  # ASGI 3, although __call__ is not a coroutine function

    def __init__(self, routes: Mapping[str, ASGIApp], default: ASGIApp) -> None:
        self.routes = dict(routes)
        self.default = default

    def __call__(self, scope: Any, receive: Any, send: Any) -> Awaitable[None]:
        # Not a coroutine: the chosen application's own is the request's only one.
        return self.routes.get(scope.get("method", ""), self.default)(scope, receive, send)


class ByProtocol:
    """Channels' `ProtocolTypeRouter` without a coroutine of its own: send a connection to
    the application for its scope's type.
    """

    _asgi_single_callable = True  # ASGI 3, although __call__ is not a coroutine function

    def __init__(self, applications: Mapping[str, ASGIApp]) -> None:
        self.applications = dict(applications)

    def __call__(self, scope: Any, receive: Any, send: Any) -> Awaitable[None]:
        application = self.applications.get(scope["type"])
        if application is None:
            raise ValueError(f"No application for the ASGI scope type {scope['type']!r}")
        return application(scope, receive, send)


def reader_route(path: str) -> dict[str, str] | None:
    """The keyword arguments of a reader's path (streamsite/asgi.py routes its `GET`s
    before Channels' `URLRouter`), or None for any other path."""
    if path == "/api/events":
        return {}
    prefix, suffix = "/api/event-types/", "/events"
    name = path[len(prefix) : -len(suffix)] if path.startswith(prefix) else ""
    return {"name": name} if path.endswith(suffix) and name and "/" not in name else None


class MethodNotAllowed:
    """405 with the methods a path serves, for a path whose methods are all routed here."""

    def __init__(self, *methods: str) -> None:
        self.allowed = ", ".join(methods)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        problem = Problem(
            405,
            f"{scope.get('method')} is not allowed here; use {self.allowed}.",
            headers={"Allow": self.allowed},
        )
        response = response_of(problem)
        headers = asgi_headers(response)
        await send({"type": "http.response.start", "status": 405, "headers": headers})
        await send({"type": "http.response.body", "body": response.content})


class AsyncView:
    """Serve one async `api_view` straight from ASGI, for the hot paths (publishing and
    committing): Django's ASGI handler costs a thread and several thread hops per request,
    for the request signals (measured: ~3.5 ms of server CPU per commit). What Django's
    middleware does for /api/ is done here: the host check, CORS, and problem+json for any
    error. The route's keyword arguments are the view's.
    """

    def __init__(self, view: AsyncViewFunction) -> None:
        self.view = view
        self._app = Cors(self._serve)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        with draining.sending():  # a drain answers a commit under way before it stops
            await self._app(scope, receive, send)

    async def _serve(self, scope: Any, receive: Any, send: Any) -> None:
        body, complete = await _read_body(receive, settings.MAX_REQUEST_BYTES)
        if body is None:
            return  # the client left
        try:
            if not complete:
                raise Problem(413, "The request body is larger than the server accepts.")
            request = ASGIRequest(scope, io.BytesIO(body))
            request.get_host()  # DisallowedHost for a host not in ALLOWED_HOSTS
            response = await self.view(request, **scope["url_route"]["kwargs"])
        except Problem as problem:
            response = response_of(problem)
        except DisallowedHost as error:
            response = response_of(Problem(400, str(error)))
        except Exception:
            logger.exception("%s %s failed", scope.get("method"), scope.get("path"))
            response = response_of(Problem(500, "The server failed on this request; retry it."))
        headers = asgi_headers(response)
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": headers}
        )
        await send({"type": "http.response.body", "body": response.content})


async def _read_body(receive: Any, limit: int) -> tuple[bytes | None, bool]:
    """The request body, and whether it fit within `limit` bytes (None if the client left);
    no more than `limit` bytes are kept.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None, False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks), size <= limit
