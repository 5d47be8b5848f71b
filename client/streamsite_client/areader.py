"""A reader for asyncio code: reader.py's rules, iterated with `async for`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

import httpx

from streamsite_client.backoff import Backoff
from streamsite_client.errors import ApiError, StreamEnded
from streamsite_client.options import After, after_close
from streamsite_client.reading import reader_request
from streamsite_client.transport import NETWORK_ERRORS, api_error, headers, timeout
from streamsite_client.wire import ReaderBatch, Reset, SSEDecoder, reader_message

if TYPE_CHECKING:
    from streamsite_client.aclient import AsyncClient

log = logging.getLogger(__name__)


class AsyncReader:
    """`async for item in reader`: `ReaderBatch`es and `Reset`s; see Reader."""

    def __init__(
        self,
        client: AsyncClient,
        event_types: Sequence[str],
        *,
        read_from: str | None = None,
        topics: Sequence[str] = (),
        last_event_id: str | None = None,
        batch_limit: int | None = None,
        initial_retry_interval: float = 0.5,
        max_retry_interval: float = 10.0,
    ) -> None:
        self.client, self.event_types = client, list(event_types)
        self.read_from, self.topics, self.batch_limit = read_from, list(topics), batch_limit
        self.last_event_id = last_event_id
        self._backoff = Backoff(initial_retry_interval, max_retry_interval)
        self._closed = False
        self._http = httpx.AsyncClient(headers=headers(client.token), timeout=timeout(None))

    async def __aiter__(self) -> AsyncIterator[ReaderBatch | Reset]:
        endpoints = self.client.endpoints
        while not self._closed:
            url = endpoints.current()
            reason: str | None = None
            try:
                path, query, sent = reader_request(
                    self.event_types,
                    read_from=self.read_from,
                    topics=self.topics,
                    last_event_id=self.last_event_id,
                    batch_limit=self.batch_limit,
                )
                async with self._http.stream(
                    "GET", url + path, params=tuple(query), headers=sent
                ) as r:
                    if r.status_code != 200:
                        await r.aread()
                        raise api_error(r, "opening the reader")
                    self._backoff.reset()
                    decoder = SSEDecoder()
                    async for line in r.aiter_lines():
                        message = decoder.feed(line.rstrip("\r\n"))
                        item = reader_message(message) if message is not None else None
                        if isinstance(item, str):
                            reason = item
                            break
                        if isinstance(item, ReaderBatch) and item.id:
                            self.last_event_id = item.id
                        if item is not None:
                            yield item
                step = after_close(reason)
                problem: Exception = StreamEnded(f"the reader closed with {reason}", reason or "")
            except NETWORK_ERRORS as error:
                endpoints.failed(url)
                step, problem = After.BACKOFF, error
            except ApiError as error:
                if error.status < 500 and error.status != 429:
                    raise
                endpoints.failed(url)
                step, problem = After.BACKOFF, error
            if self._closed:
                return
            if step is After.STOP:
                raise problem
            if reason == "shutdown":
                endpoints.failed(url)  # that server is going away: resume on the next
            if step is After.BACKOFF:
                delay = self._backoff.next_delay() or 0.0
                log.info("reader: %s; resuming in %.2fs", problem, delay)
                await asyncio.sleep(delay)

    async def __aenter__(self) -> AsyncReader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        with contextlib.suppress(Exception):
            await self._http.aclose()
