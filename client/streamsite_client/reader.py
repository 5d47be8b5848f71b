"""A reader for sync code: every event of some types over SSE, resumed with
`Last-Event-ID` after any disconnect, resets handed to the caller (README.md, "Reading").
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Generator, Iterator, Sequence
from typing import TYPE_CHECKING

import httpx

from streamsite_client.backoff import Backoff
from streamsite_client.errors import ApiError, StreamEnded
from streamsite_client.options import After, after_close
from streamsite_client.reading import reader_request
from streamsite_client.transport import NETWORK_ERRORS, api_error, headers, timeout
from streamsite_client.wire import ReaderBatch, Reset, SSEDecoder, reader_message

if TYPE_CHECKING:
    from streamsite_client.client import Client

log = logging.getLogger(__name__)


class Reader:
    """Iterate to get `ReaderBatch`es and `Reset`s, in order, for as long as it runs;
    `last_event_id` is the position after the last batch given (keep it to resume later).
    """

    def __init__(
        self,
        client: Client,
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
        self._closed = threading.Event()
        self._response: httpx.Response | None = None
        self._http = httpx.Client(headers=headers(client.token), timeout=timeout(None))

    def __iter__(self) -> Iterator[ReaderBatch | Reset]:
        endpoints = self.client.endpoints
        while not self._closed.is_set():
            url = endpoints.current()
            reason: str | None = None
            try:
                reason = yield from self._read(url)
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
            if self._closed.is_set():
                return
            if step is After.STOP:
                raise problem
            if reason == "shutdown":
                endpoints.failed(url)  # that server is going away: resume on the next
            if step is After.BACKOFF:
                delay = self._backoff.next_delay() or 0.0
                log.info("reader: %s; resuming in %.2fs", problem, delay)
                self._closed.wait(delay)

    def _read(self, url: str) -> Generator[ReaderBatch | Reset, None, str | None]:
        path, query, sent = reader_request(
            self.event_types,
            read_from=self.read_from,
            topics=self.topics,
            last_event_id=self.last_event_id,
            batch_limit=self.batch_limit,
        )
        with self._http.stream("GET", url + path, params=tuple(query), headers=sent) as response:
            if response.status_code != 200:
                response.read()
                raise api_error(response, "opening the reader")
            self._response = response
            self._backoff.reset()
            try:
                for message in SSEDecoder().feed_all(response.iter_lines()):
                    item = reader_message(message)
                    if isinstance(item, str):
                        return item
                    if isinstance(item, ReaderBatch) and item.id:
                        self.last_event_id = item.id
                    if item is not None:
                        yield item
            finally:
                self._response = None
        return None

    def events(self) -> Iterator[dict]:
        """Only the events, one by one (resets are logged)."""
        for item in self:
            if isinstance(item, Reset):
                log.warning("reader reset (%s): continuing from %s", item.reason, item.position)
            else:
                yield from item.events

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop: the iteration ends (from another thread too)."""
        self._closed.set()
        response = self._response
        if response is not None:
            network = response.extensions.get("network_stream")
            sock = network.get_extra_info("socket") if network is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._http.close()
