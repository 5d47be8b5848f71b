"""ASGI routing helpers that Channels does not have."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]


class ByMethod:
    """Send an HTTP request to the application for its method, else to `default`."""

    def __init__(self, routes: Mapping[str, ASGIApp], default: ASGIApp) -> None:
        self.routes = dict(routes)
        self.default = default

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.routes.get(scope.get("method", ""), self.default)(scope, receive, send)
