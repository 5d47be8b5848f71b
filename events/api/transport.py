"""What the server still holds for a client: Daphne writes whatever the application sends
into Twisted's transport buffer at once, with no backpressure
(docs/architecture.md#measured-facts-about-the-stack), so a stream that must bound what a
slow client costs has to read that buffer itself.

`WriteBufferProbe` wraps the ASGI application (outermost, before anything wraps `send`)
and puts a probe in the scope: `scope["extensions"][BUFFERED]()` is the number of bytes
written for the connection and not yet handed to the kernel. Under another server the
probe is missing and `buffered(scope)` reads 0: servers that push back need none.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

BUFFERED = "streamsite.buffered"
ASGIApp = Callable[[Any, Any, Any], Any]


def _transport_of(send: Any) -> Any:
    """Daphne's `send` is `partial(server.handle_reply, protocol)`: the protocol's channel
    holds the Twisted transport.
    """
    if isinstance(send, functools.partial) and send.args:
        channel = getattr(send.args[0], "channel", None)
        transport = getattr(channel, "transport", None)
        if transport is not None and hasattr(transport, "dataBuffer"):
            return transport
    return None


def _probe(transport: Any) -> Callable[[], int]:
    def held() -> int:
        # twisted.internet.abstract.FileDescriptor: a buffer being written from `offset`,
        # and the writes queued behind it.
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen

    return held


class WriteBufferProbe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app  # the wrapped application, for whoever inspects the routes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            transport = _transport_of(send)
            if transport is not None:
                extensions = {**(scope.get("extensions") or {}), BUFFERED: _probe(transport)}
                scope = {**scope, "extensions": extensions}
        await self.app(scope, receive, send)


def buffered(scope: Any) -> Callable[[], int]:
    """The probe of a request's scope, or one that reads 0."""
    probe: Callable[[], int] | None = (scope.get("extensions") or {}).get(BUFFERED)
    return probe or (lambda: 0)
