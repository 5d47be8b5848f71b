"""A subscription stream for asyncio code: go-nakadi's StreamAPI as stream.py, with a task
reading the stream and reconnecting with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import httpx

from streamsite_client import commits
from streamsite_client.backoff import Backoff
from streamsite_client.errors import ApiError, CommitRefused, StreamEnded, StreamsiteError
from streamsite_client.options import After, StreamOptions, after_close
from streamsite_client.transport import (
    NETWORK_ERRORS,
    Endpoints,
    api_error,
    headers,
    timeout,
)
from streamsite_client.wire import Batch, parse_batch

if TYPE_CHECKING:
    from streamsite_client.aclient import AsyncClient

log = logging.getLogger(__name__)


class AsyncSubscriptionStream:
    """One consumer of a subscription; create it inside a running event loop."""

    def __init__(
        self,
        client: AsyncClient,
        subscription_id: str,
        options: StreamOptions | None = None,
        *,
        endpoints: Endpoints | None = None,
    ) -> None:
        self.client = client
        self.subscription_id = subscription_id
        self.options = options or StreamOptions()
        self.stream_id = ""
        self._endpoints = endpoints or client.endpoints
        self._queue: asyncio.Queue[Batch | BaseException] = asyncio.Queue()
        self._closed = asyncio.Event()
        self._abandoned: set[str] = set()
        self._reconnect_delay: float | None = None
        self._connection: asyncio.Task[str | None] | None = None
        self._committed = commits.Committed()
        self._http = httpx.AsyncClient(
            headers=headers(client.token), timeout=timeout(self.options.read_timeout())
        )
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def next_events(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 (the sync stream's signature)
        *,
        keep_alives: bool = False,
    ) -> Batch:
        """The next batch with events (keep-alives too when asked); TimeoutError after
        `timeout` seconds, StreamEnded once closed, an ApiError the stream cannot get past.
        """
        async with asyncio.timeout(timeout):
            while True:
                item = await self._queue.get()
                if isinstance(item, BaseException):
                    self._queue.put_nowait(item)
                    raise item
                if (item.events or keep_alives) and item.stream_id not in self._abandoned:
                    return item

    async def commit(
        self, *items: Batch | dict[str, str], stream_id: str = "", retry: bool | None = None
    ) -> list[dict[str, Any]]:
        """Commit batches or cursors; see SubscriptionStream.commit."""
        stream_id, cursors = commits.request_of(items, stream_id or self.stream_id)
        options = self.options
        backoff = Backoff(
            options.initial_retry_interval,
            options.max_retry_interval,
            max_elapsed=options.commit_max_elapsed_time,
        )
        path = commits.path(self.subscription_id)
        while True:
            url = self._endpoints.current()
            try:
                response = await self.client.http.post(
                    url + path, json={"items": cursors}, headers={"X-Nakadi-StreamId": stream_id}
                )
            except NETWORK_ERRORS as failure:
                self._endpoints.failed(url)
                error: Exception = failure
            else:
                results = commits.results(response, cursors)
                if results is not None:
                    self._committed.record(stream_id, results)
                    return results
                if response.status_code == 422:
                    raise api_error(response, "commit", CommitRefused)
                error = api_error(response, "commit")
                if not commits.retryable(response.status_code):
                    raise error
            retrying = options.commit_retry if retry is None else retry
            delay = backoff.next_delay() if retrying else None
            if delay is None:
                raise error
            self._notify_err(error, delay)
            await asyncio.sleep(delay)

    async def keep_alive(self, batch: Batch) -> bool:
        """Commit the partition's committed cursor again; see SubscriptionStream.keep_alive."""
        cursor = self._committed.keep_alive_cursor(batch)
        try:
            await self.commit(cursor, stream_id=batch.stream_id, retry=False)
        except (StreamsiteError, *NETWORK_ERRORS) as error:
            log.info("keep-alive commit of %s failed: %s", batch.partition, error)
            return False
        return True

    def reconnect(self, delay: float = 0.0, failed: Batch | None = None) -> None:
        """Drop the current stream and open another after `delay` seconds; see
        SubscriptionStream.reconnect.
        """
        self._abandoned.update(s for s in (self.stream_id, failed and failed.stream_id) if s)
        self._reconnect_delay = delay
        if self._connection is not None:
            self._connection.cancel()

    async def close(self) -> None:
        """Disconnect and stop; `next_events` raises StreamEnded from now on."""
        self._closed.set()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._queue.put_nowait(StreamEnded("the stream was closed", "closed"))
        await self._http.aclose()

    async def __aenter__(self) -> AsyncSubscriptionStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _run(self) -> None:
        options = self.options
        backoff = Backoff(options.initial_retry_interval, options.max_retry_interval)
        while not self._closed.is_set():
            url = self._endpoints.current()
            wait: float | None = None
            reason: str | None = None
            error: Exception
            self._connection = asyncio.get_running_loop().create_task(self._read(url, backoff))
            try:
                reason = await self._connection
                step, error = after_close(reason), commits.close_error(reason)
            except asyncio.CancelledError:
                if self._closed.is_set() or self._reconnect_delay is None:
                    raise
                step, error = After.BACKOFF, StreamsiteError("reconnecting")
            except NETWORK_ERRORS as failure:
                step, error = After.BACKOFF, failure
                self._endpoints.failed(url)
            except ApiError as failure:
                if not commits.retryable(failure.status):
                    self._queue.put_nowait(failure)
                    return
                step, error = After.BACKOFF, failure
                if failure.status == 503:
                    self._endpoints.failed(url)
                wait = failure.retry_after
            except Exception as failure:  # a line that does not parse: a server's bug
                log.exception("the stream failed")
                step, error = After.BACKOFF, failure
            asked, self._reconnect_delay = self._reconnect_delay, None
            if asked is not None:
                step, wait = After.BACKOFF, asked
            if step is After.STOP:
                self._queue.put_nowait(StreamEnded(f"the stream ended: {error}", str(error)))
                return
            if step is After.RECONNECT_NOW:
                if reason == "shutdown":
                    self._endpoints.failed(url)  # that server is going away: try the next
                log.info("stream closed (%s): reconnecting at once", error)
                backoff.reset()
                continue
            delay = wait if wait is not None else (backoff.next_delay() or 0.0)
            self._notify_err(error, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), delay)

    async def _read(self, url: str, backoff: Backoff) -> str | None:
        path = f"/api/subscriptions/{self.subscription_id}/events"
        async with self._http.stream("GET", url + path, params=self.options.params()) as response:
            if response.status_code != 200:
                await response.aread()
                raise api_error(response, "opening the stream")
            stream_id = self.stream_id = response.headers.get("X-Nakadi-StreamId", "")
            backoff.reset()
            if self.options.notify_ok is not None:
                self.options.notify_ok()
            reason = None
            async for line in response.aiter_lines():
                if line.strip():
                    batch = parse_batch(line, stream_id)
                    reason = batch.close_reason or reason
                    self._queue.put_nowait(batch)
            return reason

    def _notify_err(self, error: Exception, delay: float) -> None:
        log.info("stream error, retrying in %.2fs: %s", delay, error)
        if self.options.notify_err is not None:
            self.options.notify_err(error, delay)
