"""What the server still holds for a client: Daphne writes whatever the application sends
into Twisted's transport buffer at once, with no backpressure
(docs/architecture.md#measured-facts-about-the-stack), so a stream that must bound what a
slow client costs has to read that buffer itself.

`WriteBufferProbe` wraps the ASGI application (outermost, before anything wraps `send`)
and puts a probe in the scope: `scope["extensions"][BUFFERED]()` is the number of bytes
written for the connection and not yet handed to the kernel; and a direct writer,
`scope["extensions"][WRITE](data)`, with which the reader hub writes a batch to ten
thousand readers without a coroutine each. Under another server the
probe is missing and `buffered(scope)` reads 0: servers that push back need none.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

BUFFERED = "streamsite.buffered"
WRITE = "streamsite.write"
ON_LOST = "streamsite.on_lost"
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
                extensions = {
                    **(scope.get("extensions") or {}),
                    BUFFERED: _probe(transport),
                    WRITE: _writer(send),
                    ON_LOST: _on_lost(send),
                }
                scope = {**scope, "extensions": extensions}
        await self.app(scope, receive, send)


def _writer(send: Any) -> Callable[[bytes], bool]:
    """Write a body chunk at once, from plain code, without a coroutine per write. Once
    the response streams (its headers out, chunked), the chunk goes straight to the socket
    when Twisted holds nothing for it: Twisted would otherwise register the socket for
    writability and write on a later turn, two epoll calls per write and connection. What
    the socket does not take, Twisted buffers as usual. False once the client is gone.
    """
    server, request = send.func.__self__, send.args[0]

    def write(data: bytes) -> bool:
        connection = server.connections.get(request)
        if connection is None or connection.get("disconnected"):
            return False
        transport = getattr(getattr(request, "channel", None), "transport", None)
        if not (request.startedWriting and request.chunked and transport is not None):
            request.handle_reply({"type": "http.response.body", "body": data, "more_body": True})
            return True
        if transport.disconnecting:
            return False
        request.sentLength += len(data)
        frame = _chunk(data)
        sock = getattr(transport, "socket", None)
        if sock is None or len(transport.dataBuffer) - transport.offset + transport._tempDataLen:
            transport.write(frame)
            return True
        try:
            sent = sock.send(frame)
        except BlockingIOError:
            sent = 0
        except OSError:
            return False  # Twisted notices the broken connection itself
        if sent < len(frame):
            transport.write(frame[sent:])
        return True

    return write


_last_chunk: tuple[bytes, bytes] = (b"", b"0\r\n\r\n")


def _chunk(data: bytes) -> bytes:
    """`data` as one chunk of a chunked body; the hub writes the same bytes to every reader
    at one position in a row, so the last one made is kept.
    """
    global _last_chunk
    if _last_chunk[0] is not data:
        _last_chunk = (data, b"%x\r\n%b\r\n" % (len(data), data))
    return _last_chunk[1]


def _on_lost(send: Any) -> Callable[[Callable[[], None]], None]:
    """Call a function when the request ends or its connection is lost (Twisted's
    `notifyFinish`): the client's departure noticed without a task waiting for it.
    """
    protocol = send.args[0]

    def on_lost(callback: Callable[[], None]) -> None:
        protocol.notifyFinish().addBoth(lambda _: callback())

    return on_lost


def on_lost(scope: Any) -> Callable[[Callable[[], None]], None] | None:
    found: Callable[[Callable[[], None]], None] | None = (scope.get("extensions") or {}).get(
        ON_LOST
    )
    return found


def writer(scope: Any) -> Callable[[bytes], bool] | None:
    """The direct writer of a request's scope (Daphne), or None."""
    found: Callable[[bytes], bool] | None = (scope.get("extensions") or {}).get(WRITE)
    return found


def buffered(scope: Any) -> Callable[[], int]:
    """The probe of a request's scope, or one that reads 0."""
    probe: Callable[[], int] | None = (scope.get("extensions") or {}).get(BUFFERED)
    return probe or (lambda: 0)
