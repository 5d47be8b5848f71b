"""What the server still holds for a client: Daphne writes whatever the application sends
into Twisted's transport buffer at once, with no backpressure
(docs/architecture.md#measured-facts-about-the-stack), so a stream that must bound what a
slow client costs has to read that buffer itself.

`WriteBufferProbe` wraps the ASGI application (outermost, before anything wraps `send`)
and puts the request's `DaphneConnection` in the scope: `buffered(scope)()` is the number
of bytes written for the connection and not yet handed to the kernel, `writer(scope)` a
direct writer with which the reader hub writes a batch to ten thousand readers without a
coroutine each, and `on_lost(scope)` says when the client leaves. Under another server
there is none: `buffered(scope)` reads 0 (servers that push back need no bound of ours).

Two more things a long-lived or odd request needs from Daphne's side: `lighten(scope,
receive)` swaps Daphne's `asyncio.Queue` of a request's messages for a small `Mailbox`
(a reader holds its request for hours), and `read_no_forms()` stops Twisted from parsing
form bodies before the application sees them (it answered a malformed one with a bare 400).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

CONNECTION = "streamsite.connection"
ASGIApp = Callable[[Any, Any, Any], Any]


class DaphneConnection:
    """The Twisted side of one HTTP request under Daphne, whose `send` is
    `partial(server.handle_reply, request)`. One small object per request: a process holds
    tens of thousands of readers.
    """

    __slots__ = ("request", "server")

    def __init__(self, server: Any, request: Any) -> None:
        self.server, self.request = server, request

    @classmethod
    def of(cls, send: Any) -> DaphneConnection | None:
        if isinstance(send, functools.partial) and send.args:
            request = send.args[0]
            transport = getattr(getattr(request, "channel", None), "transport", None)
            if transport is not None and hasattr(transport, "dataBuffer"):
                return cls(send.func.__self__, request)  # type: ignore[attr-defined]
        return None

    def buffered(self) -> int:
        """Bytes written for the client and not yet handed to the kernel."""
        transport = getattr(self.request.channel, "transport", None)
        if transport is None:
            return 0
        # twisted.internet.abstract.FileDescriptor: a buffer being written from `offset`,
        # and the writes queued behind it.
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen

    def write(self, data: bytes) -> bool:
        """Write a body chunk at once, from plain code, without a coroutine per write. Once
        the response streams (its headers out, chunked), the chunk goes straight to the
        socket when Twisted holds nothing for it: Twisted would otherwise register the
        socket for writability and write on a later turn, two epoll calls per write and
        connection. What the socket does not take, Twisted buffers as usual. False once
        the client is gone.
        """
        request = self.request
        connection = self.server.connections.get(request)
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

    def lighten(self) -> Callable[[], Awaitable[dict[str, Any]]]:
        """Swap Daphne's `asyncio.Queue` of this request's messages (four deques, ~3 KB)
        for a `Mailbox` (~100 bytes) holding the same messages, for a request that stays
        open for hours; its new `receive`.
        """
        queue = self.request.application_queue
        mailbox = Mailbox()
        while queue is not None and not queue.empty():
            mailbox.put_nowait(queue.get_nowait())
        self.request.application_queue = mailbox
        return mailbox.get

    def on_lost(self, callback: Callable[[], None]) -> None:
        """Call `callback` when the request ends or its connection is lost (Twisted's
        `notifyFinish`): the client's departure noticed without a task waiting for it.
        """
        self.request.notifyFinish().addBoth(lambda _: callback())


def read_no_forms() -> None:
    """Let the application read every request body itself. Daphne's requests are Twisted's,
    which parse a POST's form body (multipart or urlencoded) before Daphne sees it, and
    answer one they cannot parse with a bare 400 (no problem+json, not even headers); the
    application never looks at what they parse. Idempotent; call it where Daphne imports
    the application.
    """
    from daphne.http_protocol import WebRequest

    if getattr(WebRequest, "_reads_no_forms", False):
        return
    original = WebRequest.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._parsePOSTFormSubmission = False  # Twisted's switch (twisted.web.http.Request)

    WebRequest.__init__ = __init__  # type: ignore[method-assign]
    WebRequest._reads_no_forms = True  # type: ignore[attr-defined]


class Mailbox:
    """What Daphne needs of a request's message queue (`put_nowait`, and `get` as the
    application's `receive`) for one receiver at a time, in two slots.
    """

    __slots__ = ("_messages", "_waiter")

    def __init__(self) -> None:
        self._messages: list[dict[str, Any]] | None = None
        self._waiter: asyncio.Future[dict[str, Any]] | None = None

    def put_nowait(self, message: dict[str, Any]) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._waiter = None
            waiter.set_result(message)
        elif self._messages is None:
            self._messages = [message]
        else:
            self._messages.append(message)

    async def get(self) -> dict[str, Any]:
        if self._messages:
            message = self._messages.pop(0)
            if not self._messages:
                self._messages = None
            return message
        if self._waiter is not None:
            raise RuntimeError("Mailbox has one receiver at a time")
        self._waiter = waiter = asyncio.get_running_loop().create_future()
        try:
            return await waiter
        finally:
            if self._waiter is waiter:
                self._waiter = None


class WriteBufferProbe:
    _asgi_single_callable = True  # ASGI 3, although __call__ is not a coroutine function

    def __init__(self, app: ASGIApp) -> None:
        self.app = app  # the wrapped application, for whoever inspects the routes

    def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        # Not a coroutine: the application's own is the request's only one.
        if scope.get("type") == "http":
            found = DaphneConnection.of(send)
            if found is not None:
                # The server's own scope of this request, added to rather than copied.
                if scope.get("extensions") is None:
                    scope["extensions"] = {}
                scope["extensions"][CONNECTION] = found
        return self.app(scope, receive, send)


def connection(scope: Any) -> DaphneConnection | None:
    found: DaphneConnection | None = (scope.get("extensions") or {}).get(CONNECTION)
    return found


def buffered(scope: Any) -> Callable[[], int]:
    """The probe of a request's scope, or one that reads 0."""
    found = connection(scope)
    return found.buffered if found is not None else (lambda: 0)


def writer(scope: Any) -> Callable[[bytes], bool] | None:
    """The direct writer of a request's scope (Daphne), or None."""
    found = connection(scope)
    return found.write if found is not None else None


def lighten(scope: Any, receive: Any) -> Any:
    """The `receive` of a long-lived request, its messages held by a `Mailbox` under
    Daphne (call it from the application's coroutine: Daphne sets the queue up after
    making the coroutine); `receive` itself elsewhere.
    """
    found = connection(scope)
    return found.lighten() if found is not None else receive


def on_lost(scope: Any) -> Callable[[Callable[[], None]], None] | None:
    found = connection(scope)
    return found.on_lost if found is not None else None


_last_chunk: tuple[bytes, bytes] = (b"", b"0\r\n\r\n")


def _chunk(data: bytes) -> bytes:
    """`data` as one chunk of a chunked body; the hub writes the same bytes to every reader
    at one position in a row, so the last one made is kept.
    """
    global _last_chunk
    if _last_chunk[0] is not data:
        _last_chunk = (data, b"%x\r\n%b\r\n" % (len(data), data))
    return _last_chunk[1]
