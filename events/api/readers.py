"""The readers' endpoints (docs/architecture.md#readers), a Channels consumer:

- `GET /api/event-types/{name}/events`: Nakadi's low-level stream of one type;
- `GET /api/events?event_type=A&event_type=b.*`: several types on one connection.

NDJSON (Nakadi's framing, `X-Nakadi-Cursors`) or SSE (`event: batch` with the position as
`id:`, `Last-Event-ID` / `lastEventId` to resume, `event: reset` where a position cannot be
honoured exactly). Everything in the URL is checked before any byte is sent (422).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import parse_qsl

import orjson
import redis
from asgiref.sync import sync_to_async
from django.conf import settings

from events.api import event_types, identity, transport
from events.api.decorators import redis_unavailable
from events.api.http import asgi_headers, header, response_of
from events.catalog import snapshots
from events.catalog.auth import Principal
from events.core import framing, positions, stream_params, times, topics
from events.core.offsets import BEGIN, CursorError, parse_offset
from events.core.positions import START
from events.core.problems import Problem
from events.core.publishing import Target
from events.models import EventType
from events.store.tails import tails
from events.streaming import draining, reader_start
from events.streaming.reader_start import END, ReadType, Start
from events.streaming.readers import GONE, Reader, ReaderOptions

logger = logging.getLogger(__name__)

MAX_TYPES = 50  # event types (names or globs) one connection may ask for


class ReaderStream:
    """GET /api/event-types/{name}/events and GET /api/events: a reader's stream.

    A plain ASGI application, not a Channels consumer: a consumer costs a dispatch task
    and its own state per connection, and a process holds tens of thousands of readers.
    """

    __slots__ = ("_receive", "_send", "scope")

    def __init__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scope, self._receive, self._send = scope, receive, send

    @classmethod
    def as_asgi(cls) -> Any:
        def application(scope: Any, receive: Any, send: Any) -> Any:
            return cls(scope, receive, send).handle()  # the request's one coroutine

        application._asgi_single_callable = True  # type: ignore[attr-defined]  # ASGI 3
        return application

    async def send_headers(self, headers: list[tuple[bytes, bytes]], status: int = 200) -> None:
        await self._send({"type": "http.response.start", "status": status, "headers": headers})

    async def send_body(self, body: bytes, *, more_body: bool = False) -> None:
        await self._send({"type": "http.response.body", "body": body, "more_body": more_body})

    async def _answer(self, problem: Problem) -> None:
        response = response_of(problem)
        await self.send_headers(asgi_headers(response), status=response.status_code)
        await self.send_body(response.content)

    async def _client_gone(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass

    async def handle(self) -> None:
        self._receive = transport.lighten(self.scope, self._receive)
        sse = framing.accepts_sse(header(self.scope, b"accept") or "")
        try:
            reader = await self._open(sse)
        except Problem as problem:
            await self._answer(problem)
            return
        except (redis.ConnectionError, redis.TimeoutError) as error:
            await self._answer(redis_unavailable(error))
            return
        await self.send_headers(
            headers=[
                (b"content-type", (framing.SSE if sse else framing.NDJSON).encode()),
                (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no"),
            ]
        )
        await self.send_body(framing.sse_start() if sse else b"", more_body=True)
        if reader is None:  # the server drains: an EventSource comes back elsewhere
            await self.send_body(framing.sse_close("shutdown"))
            return
        with draining.sending():
            await self._stream(reader)

    async def _stream(self, reader: Reader) -> None:
        write, lost = transport.writer(self.scope), transport.on_lost(self.scope)
        if write is None or lost is None:  # not under Daphne: a task watches the client
            await self._stream_watched(reader)
            return

        async def send(data: bytes) -> None:
            if not write(data):
                reader.stop(GONE)

        # Ten thousand readers cost no task each beyond their own: the hub writes to them
        # directly, and Twisted says when one leaves.
        lost(lambda: reader.stop(GONE))
        draining.track(reader)
        try:
            reason = await reader.run(send, transport.buffered(self.scope), write)
        finally:
            draining.untrack(reader)
        if reason != GONE:
            write(reader.closing(reason))
            await self.send_body(b"")

    async def _stream_watched(self, reader: Reader) -> None:
        async def send(data: bytes) -> None:
            await self.send_body(data, more_body=True)

        draining.track(reader)
        run = asyncio.ensure_future(reader.run(send, transport.buffered(self.scope)))
        gone = asyncio.ensure_future(self._client_gone())
        left = True  # unless the stream ends first
        try:
            done, _ = await asyncio.wait({run, gone}, return_when=asyncio.FIRST_COMPLETED)
            left = gone in done
        finally:
            draining.untrack(reader)
            gone.cancel()
            if not run.done():  # the client left (or the server cancels the stream)
                reader.stop(GONE)
                run.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await run
        if left:
            return
        try:
            reason = run.result()
        except Exception:
            logger.exception("reader failed")
            await self.send_body(b"")
            return
        await self.send_body(reader.closing(reason))

    async def _open(self, sse: bool) -> Reader | None:
        if self.scope["method"] != "GET":
            raise Problem(
                405,
                f"{self.scope['method']} is not allowed here; use GET.",
                headers={"Allow": "GET"},
            )
        principal = await identity.principal_of_scope(self.scope)
        values = parse_qsl(self.scope["query_string"].decode("latin-1"), keep_blank_values=True)
        query: dict[str, list[str]] = {}
        for key, value in values:
            query.setdefault(key, []).append(value)
        single = {k: v[-1] for k, v in query.items()}
        try:
            params = stream_params.parse(single)
        except stream_params.StreamParamError as error:
            raise Problem(422, str(error)) from None
        patterns = _topics(query.get("topics", []))
        read_from = _read_from(single.get("read_from", "end"))
        types = await self._types(principal, query)
        if draining.is_draining():
            if sse:
                return None
            raise Problem(503, "This server is shutting down; retry.", headers={"Retry-After": "1"})
        epoch = await tails().epoch()
        if sse and positions.longest([(t.name, t.store_id, t.partition_count) for t in types]) > (
            positions.MAX_LENGTH
        ):
            raise Problem(
                422,
                "These event types have too many partitions for one SSE stream: its "
                "Last-Event-ID would not fit in a request header. Read them on several streams.",
            )
        globbed = "name" not in self.scope["url_route"]["kwargs"] and any(
            _is_glob(n) for v in query.get("event_type", []) for n in v.split(",")
        )
        resume_at = single.get("lastEventId")
        start = await _start(self.scope, sse, types, read_from, resume_at, globbed, epoch)
        options = ReaderOptions(
            params=params,
            topics=tuple(patterns),
            sse=sse,
            buffer_limit=settings.READER_BUFFER_BYTES,
            expires_at=principal.expires_at.timestamp() if principal.expires_at else None,
        )
        return Reader(types, start, epoch, options)

    async def _types(self, principal: Principal, query: dict[str, list[str]]) -> list[ReadType]:
        kwargs = self.scope["url_route"]["kwargs"]
        if "name" in kwargs:
            names = [kwargs["name"]]
        else:
            names = [n.strip() for v in query.get("event_type", []) for n in v.split(",")]
            names = [n for n in names if n]
            if not names:
                raise Problem(422, "Name the event types to read: ?event_type=A&event_type=B.*")
            if len(names) > MAX_TYPES:
                raise Problem(422, f"A stream may read at most {MAX_TYPES} event types.")
        exact = [n for n in names if not _is_glob(n)]
        globs = [n for n in names if _is_glob(n)]
        targets: dict[str, Target] = {}
        for name in exact:
            if not principal.may("read", name):  # the grants first: no section needed
                targets[name] = await snapshots.target(name, event_types.publishing_target)
                principal.require("read", name, targets[name].authorization)
        chosen = list(dict.fromkeys(exact))
        if globs:
            every = await sync_to_async(_all_sections)()
            for name, section in every:
                wanted = any(topics.matcher([g])(name) for g in globs)
                if wanted and name not in chosen and principal.may("read", name, section):
                    chosen.append(name)
            if not chosen:
                raise Problem(404, "No event type that this client may read matches.")
        out = []
        for name in chosen:
            target = (
                targets[name]
                if name in targets
                else await snapshots.target(name, event_types.publishing_target)
            )
            out.append(ReadType(target.name, target.store_id, target.partition_count))
        return out


def _all_sections() -> list[tuple[str, dict[str, Any] | None]]:
    """Every event type's name and authorization section, by name."""
    rows = EventType.objects.order_by("name").values_list("name", "authorization")
    return list(rows)


def _is_glob(name: str) -> bool:
    return any(c in name for c in "*?[")


def _topics(values: list[str]) -> list[str]:
    patterns = [p.strip() for v in values for p in v.split(",") if p.strip()]
    if len(patterns) > topics.MAX_PATTERNS:
        raise Problem(422, f"topics may hold at most {topics.MAX_PATTERNS} patterns.")
    return sorted(set(patterns))


def _read_from(value: str) -> str | int:
    """`end`, `begin`, or a time as milliseconds since the epoch."""
    if value in ("end", "begin"):
        return value
    moment = times.parse_rfc3339(value)
    if moment is None:
        raise Problem(422, f"read_from must be begin, end or an RFC 3339 time, not {value[:64]!r}.")
    if moment.tzinfo is None:
        raise Problem(422, "read_from needs a time zone (e.g. 2026-12-02T10:00:00Z).")
    return max(0, int(moment.timestamp() * 1000))


async def _start(
    scope: Any,
    sse: bool,
    types: list[ReadType],
    read_from: str | int,
    last_event_id: str | None,
    globbed: bool,
    epoch: str,
) -> Start:
    if read_from == "end":
        fallback = reader_start.everywhere(types, END)
    elif read_from == "begin":
        fallback = reader_start.everywhere(types, START)
    else:
        fallback = reader_start.at_time(types, int(read_from))
    cursors = header(scope, b"x-nakadi-cursors")
    if cursors is not None:
        return Start(reader_start.from_cursors(types, await _cursors(types, cursors)))
    resume = header(scope, b"last-event-id") or last_event_id
    if sse and resume:
        return await reader_start.resume(types, resume, fallback, globbed, epoch)
    return Start(fallback)


async def _cursors(types: list[ReadType], text: str) -> dict[tuple[str, int], str]:
    """Nakadi's `X-Nakadi-Cursors`: [{partition, offset}] (event_type too, for several
    types); 400 if it does not parse, 412 for a cursor Nakadi would refuse as unavailable.
    """
    try:
        items = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise Problem(400, "X-Nakadi-Cursors is not valid JSON.") from None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise Problem(400, "X-Nakadi-Cursors must be a JSON array of {partition, offset}.")
    by_name = {t.name: t for t in types}
    out: dict[tuple[str, int], str] = {}
    for item in items:
        name = item.get("event_type", types[0].name if len(types) == 1 else None)
        kind = by_name.get(name) if isinstance(name, str) else None
        partition = item.get("partition")
        if kind is None:
            raise Problem(412, f"Cursor {item} names no event type this stream reads.")
        if not isinstance(partition, str) or not partition.isdecimal():
            raise Problem(412, f"Cursor {item}: partition must be a string of digits.")
        if int(partition) >= kind.partition_count:
            raise Problem(412, f"Cursor {item}: partition {partition} does not exist.")
        offset = item.get("offset")
        try:
            parse_offset(offset)
        except CursorError as error:
            raise Problem(412, f"Cursor {item}: {error}.") from None
        out[(kind.name, int(partition))] = START if offset == BEGIN else offset
    found = await reader_start.unavailable(types, out)
    if found:
        raise Problem(412, f"Cursor offsets are no longer (or not yet) available: {found}.")
    return out
