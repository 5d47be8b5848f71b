"""The streaming endpoints as Channels consumers: NDJSON / SSE over HTTP, and WebSocket.

They are thin: parse and authorize once, open a `OrderedSession`, frame its batches, and
end the session the moment the client leaves. Channels does not deliver `http.disconnect`
while `handle()` runs, so the HTTP stream races its writer against the receive channel
itself (the Starlette pattern; docs/architecture.md#measured-facts-about-the-stack).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
import redis
from asgiref.sync import sync_to_async
from channels.generic.http import AsyncHttpConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from events.api import identity
from events.api.decorators import redis_unavailable
from events.api.http import asgi_headers, header, response_of
from events.catalog import plans
from events.core import framing, stream_params
from events.core.framing import Batch
from events.core.offsets import BEGIN
from events.core.plan import Plan, Position
from events.core.problems import Problem
from events.streaming import acks, commits, draining
from events.streaming.ordered_session import OrderedSession
from events.streaming.shared_session import SharedSession

logger = logging.getLogger(__name__)

TOKEN_EXPIRED = "token_expired"  # the close reason of a stream whose stream token expired


def _direct(plan: Plan, items: Any) -> list[Position]:
    """The partitions a POST body asks for directly: [{event_type, partition}]."""
    if not isinstance(items, list) or not items:
        raise Problem(422, '"partitions" must be a non-empty list of {event_type, partition}.')
    positions = []
    for item in items:
        if not isinstance(item, dict):
            raise Problem(422, '"partitions" items must be {event_type, partition} objects.')
        cursor = plan.parse_cursor({**item, "offset": BEGIN})
        positions.append((cursor.event_type, cursor.partition))
    if len(set(positions)) != len(positions):
        raise Problem(422, '"partitions" names a partition more than once.')
    return positions


async def open_session(
    scope: dict[str, Any], subscription_id: str, values: dict[str, Any]
) -> tuple[OrderedSession, datetime | None]:
    """Authorize, check the parameters and open a session; a Problem says why not. Also
    when the caller's stream token expires (None: never).
    """
    principal = await identity.principal_of_scope(scope, consumes=True)
    try:
        params = stream_params.parse({k: v for k, v in values.items() if k != "partitions"})
    except stream_params.StreamParamError as error:
        raise Problem(422, str(error)) from None
    plan = await sync_to_async(plans.load)(subscription_id, principal)
    if not float(values.get("commit_timeout") or 0):  # unset or 0: the subscription's own
        params = dataclasses.replace(params, commit_timeout=float(plan.commit_timeout))
    direct = _direct(plan, values["partitions"]) if "partitions" in values else None
    kind = SharedSession if plan.shared else OrderedSession
    session = kind(plan, params, direct)
    await session.open()
    return session, principal.expires_at


class Expiry:
    """Ends a session with `shutdown` (its partitions handed over at once, nothing charged)
    when the stream token it was opened with expires; the stream then closes with
    `token_expired`.
    """

    def __init__(self, session: OrderedSession, expires_at: datetime | None) -> None:
        self.expired = False
        self._timer: asyncio.TimerHandle | None = None
        if expires_at is not None:
            delay = max(0.0, expires_at.timestamp() - time.time())
            self._timer = asyncio.get_running_loop().call_later(delay, self._end, session)

    def _end(self, session: OrderedSession) -> None:
        self.expired = True
        session.shutdown()

    def reason(self, reason: str) -> str:
        """The close reason to tell the client."""
        return TOKEN_EXPIRED if self.expired else reason

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


class HttpStream(AsyncHttpConsumer):
    """An HTTP stream: it races its writing against the client leaving (`_client_gone`),
    and answers a refusal as problem+json.
    """

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self._receive = receive  # read by the disconnect watcher while handle() streams
        await super().__call__(scope, receive, send)

    async def _client_gone(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass

    async def _answer(self, problem: Problem) -> None:
        response = response_of(problem)
        await self.send_response(
            response.status_code, response.content, headers=asgi_headers(response)
        )


class SubscriptionStream(HttpStream):
    """GET / POST /api/subscriptions/{id}/events: NDJSON by default, SSE on request."""

    async def handle(self, body: bytes) -> None:
        if draining.is_draining() and framing.accepts_sse(header(self.scope, b"accept") or ""):
            # Any status but 200 ends an EventSource for good: tell it to come back.
            await self.send_headers(headers=[(b"content-type", framing.SSE.encode())])
            await self.send_body(framing.sse_start() + framing.sse_close("shutdown"))
            return
        try:
            session, expires_at = await open_session(
                self.scope, self.scope["url_route"]["kwargs"]["subscription_id"], self._values(body)
            )
        except Problem as problem:
            await self._answer(problem)
            return
        except (redis.ConnectionError, redis.TimeoutError) as error:
            await self._answer(redis_unavailable(error))
            return
        self._writer: asyncio.Task[str] | None = None
        expiry = Expiry(session, expires_at)
        try:
            with draining.sending():
                await self._stream(session, expiry)
        finally:
            # However handle() ends (also cancelled by the server), the session leaves.
            expiry.cancel()
            writer = self._writer
            if writer is None:
                await session.abandon()
            elif not writer.done():
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer

    async def _stream(self, session: OrderedSession, expiry: Expiry) -> None:
        """Send the headers, then batches until the session closes or the client leaves."""
        sse = framing.accepts_sse(header(self.scope, b"accept") or "")
        await self.send_headers(
            headers=[
                (b"content-type", (framing.SSE if sse else framing.NDJSON).encode()),
                (b"x-nakadi-streamid", session.id.encode()),
                (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no"),
            ]
        )
        frame = framing.sse if sse else framing.ndjson
        # The server sends the headers with the first body bytes: send them now, so the
        # client learns its stream id before the first batch.
        await self.send_body(framing.sse_start() if sse else b"", more_body=True)

        async def send_batches(out: Sequence[Batch]) -> None:
            await self.send_body(b"".join(map(frame, out)), more_body=True)

        writer = self._writer = asyncio.create_task(session.run(send_batches))
        gone = asyncio.create_task(self._client_gone())
        try:
            await asyncio.wait({writer, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not writer.done():  # the client left: the caller ends the session at once
            return
        try:
            reason = expiry.reason(writer.result())
        except Exception:
            logger.exception("session %s failed", session.id)
            await self.send_body(b"")
            return
        last = session.last_batch(framing.close_info(reason))
        closing = framing.sse(last) + framing.sse_close(reason) if sse else framing.ndjson(last)
        await self.send_body(closing)

    def _values(self, body: bytes) -> dict[str, Any]:
        method = self.scope["method"]
        if method == "GET":
            return dict(parse_qsl(self.scope["query_string"].decode("latin-1")))
        if method != "POST":
            raise Problem(
                405,
                f"{method} is not allowed here; use GET or POST.",
                headers={"Allow": "GET, POST"},
            )
        values: Any = dict(parse_qsl(self.scope["query_string"].decode("latin-1")))
        if body.strip():
            try:
                parsed = orjson.loads(body)
            except orjson.JSONDecodeError as error:
                raise Problem(400, f"The body is not valid JSON: {error}.") from None
            if not isinstance(parsed, dict):
                raise Problem(422, "The body must be a JSON object of stream parameters.")
            values.update(parsed)
        return dict(values)


class SubscriptionSocket(AsyncWebsocketConsumer):
    """/ws/subscriptions/{id}: batches as JSON text frames; the client may send
    `{"commit": [cursor, ...]}` and gets `{"commit": {"items": [...]}}` back, or, on a
    shared subscription, `{"ack": [event, ...]}` and gets `{"ack": {"items": [...]}}` (or a
    `{"problem": ...}`). A refused stream is accepted, told why, and closed with 4000 +
    the HTTP status, since a handshake refusal cannot carry a reason.
    """

    session: OrderedSession | None = None
    _task: asyncio.Task[None] | None = None
    _expiry: Expiry | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # However the consumer ends (the client left, a handler raised, or the server
            # cancelled it), the session leaves: its task would otherwise outlive the
            # socket, holding partitions and events with no one to send them to.
            await self._stop()

    async def connect(self) -> None:
        values = dict(parse_qsl(self.scope["query_string"].decode("latin-1")))
        try:
            self.session, expires_at = await open_session(
                self.scope, self.scope["url_route"]["kwargs"]["subscription_id"], values
            )
        except Problem as problem:
            await self._refuse(problem)
            return
        except (redis.ConnectionError, redis.TimeoutError) as error:
            await self._refuse(redis_unavailable(error))
            return
        self._expiry = Expiry(self.session, expires_at)
        await self.accept(headers=[(b"x-nakadi-streamid", self.session.id.encode())])
        self._task = asyncio.create_task(self._stream(self.session, self._expiry))

    async def _refuse(self, problem: Problem) -> None:
        await self.accept()
        await self.send(text_data=orjson.dumps({"problem": problem.body()}).decode())
        # (Autobahn sends no 1012, "service restart": a draining server's refusal is 4503.)
        await self.close(code=4000 + problem.status)

    async def _stream(self, session: OrderedSession, expiry: Expiry) -> None:
        async def send_batches(out: Sequence[Batch]) -> None:
            for batch in out:  # a frame each: one batch object per frame
                await self.send(text_data=batch.encode().decode())

        with draining.sending():
            try:
                reason = expiry.reason(await session.run(send_batches))
            except Exception:
                logger.exception("session %s failed", session.id)
                await self.close(code=1011)
                return
            await send_batches([session.last_batch(framing.close_info(reason))])
            await self.close(code=1000, reason=reason)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Answer one client message; whatever is wrong with it is answered with a
        `{"problem": ...}` and the socket stays open.
        """
        session = self.session
        if session is None:
            return
        try:
            reply = await _reply(session, orjson.loads(text_data or bytes_data or b""))
        except orjson.JSONDecodeError as error:
            reply = {"problem": Problem(400, f"Not valid JSON: {error}.").body()}
        except Problem as problem:
            reply = {"problem": problem.body()}
        except (redis.ConnectionError, redis.TimeoutError) as error:
            # As the HTTP endpoints answer; raised, it would end the consumer.
            reply = {"problem": redis_unavailable(error).body()}
        await self.send(text_data=orjson.dumps(reply).decode())

    async def _stop(self) -> None:
        """Cancel the stream; return once its session has left the subscription."""
        if self._expiry is not None:
            self._expiry.cancel()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def _reply(session: OrderedSession, message: Any) -> dict[str, Any]:
    """The answer to `{"ack": [event, ...]}` or `{"commit": [cursor, ...]}`; a Problem
    says what is wrong.
    """
    if isinstance(message, dict) and "ack" in message:
        events = _items(message["ack"], 'Send {"ack": [event, ...]} with at least one event.')
        items = await acks.acknowledge(session.plan, {"items": events})
        return {"ack": {"items": items}}
    if isinstance(message, dict) and "commit" in message:
        cursors = _items(
            message["commit"], 'Send {"commit": [cursor, ...]} with at least one cursor.'
        )
        return await _commit(session.plan, session.id, cursors)
    raise Problem(422, 'Send {"commit": [cursor, ...]} or {"ack": [event, ...]}.')


def _items(value: Any, expected: str) -> list[Any]:
    """The list a socket message carries; 422 saying the socket's own shape otherwise (the
    HTTP body's `{"items": [...]}` is not it).
    """
    if not isinstance(value, list) or not value:
        raise Problem(422, expected)
    return value


async def _commit(plan: Plan, session: str, items: Any) -> dict[str, Any]:
    body = {"items": items}
    cursors = commits.parse_items(plan, body)
    results = await commits.commit(plan, session, cursors)
    await commits.record(plan, cursors, results)
    return {"commit": commits.render(body, cursors, results)}
