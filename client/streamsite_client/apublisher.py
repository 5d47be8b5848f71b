"""Publishing from asyncio code: batches with retries, and a background publisher (a task)
that batches by size and linger time. The same rules as publisher.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from streamsite_client.errors import FailedEvent, PublishError, PublishRefused
from streamsite_client.publishing import Pending, eid_of, judge, prepare, retryable
from streamsite_client.transport import NETWORK_ERRORS, api_error, body_of

if TYPE_CHECKING:
    from streamsite_client.aclient import AsyncClient

log = logging.getLogger(__name__)


async def publish(
    client: AsyncClient, event_type: str, events: Iterable[Any], batch_size: int
) -> int:
    """Store `events` in batches of `batch_size`; see publisher.publish."""
    items = list(events)
    published = 0
    for start in range(0, len(items), batch_size):
        pending = Pending.of(items[start : start + batch_size], start)
        try:
            published += await publish_pending(client, event_type, pending)
        except PublishError as error:
            error.published += published
            raise
    return published


async def publish_pending(client: AsyncClient, event_type: str, pending: Pending) -> int:
    """One batch, retried until stored; see publisher.publish_pending."""
    backoff = client.retry.backoff()
    stored = 0
    path = f"/api/event-types/{quote(event_type, safe='')}/events"
    while True:
        url = client.endpoints.current()
        try:
            response = await client.http.post(url + path, json=pending.events)
        except NETWORK_ERRORS as error:
            client.endpoints.failed(url)
            problem = f"{type(error).__name__}: {error}"
        else:
            verdict = judge(response.status_code, body_of(response), pending)
            if verdict is not None:
                stored += verdict.stored
                if verdict.refused:
                    raise PublishRefused("422 the batch was refused", verdict.refused, stored)
                if not verdict.retry.indexed:
                    return stored
                pending = verdict.retry
                problem = "207 storing failed for some partitions"
            elif retryable(response.status_code):
                if response.status_code == 503:
                    client.endpoints.failed(url)
                problem = str(api_error(response))
            else:
                raise api_error(response, f"publishing to {event_type}")
        delay = backoff.next_delay()
        if delay is None:
            raise PublishError(f"gave up retrying ({problem})", pending.failures(problem), stored)
        log.info("publishing %d events again in %.2fs: %s", len(pending.indexed), delay, problem)
        await asyncio.sleep(delay)


class AsyncBackgroundPublisher:
    """BackgroundPublisher for asyncio: `await send(event)`, `await flush()`,
    `await close()`; one task publishes batches of up to `batch_size`, lingering at most
    `linger` seconds for one to fill.
    """

    def __init__(
        self,
        client: AsyncClient,
        event_type: str,
        *,
        batch_size: int = 500,
        linger: float = 0.05,
        max_pending: int = 10_000,
        on_error: Callable[[PublishError], None] | None = None,
    ) -> None:
        self._client, self._event_type = client, event_type
        self.batch_size, self.linger, self.max_pending = batch_size, linger, max_pending
        self._on_error = on_error
        self._queue: deque[Any] = deque()
        self._changed = asyncio.Condition()
        self._sent = self._done = self._flushing = 0
        self._closing = False
        self._failed: list[FailedEvent] = []
        self.published = 0
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def send(self, event: Any) -> str:
        """Queue one event (eid and occurred_at filled in now); returns its eid."""
        event = prepare(event)
        async with self._changed:
            if self._closing:
                raise PublishError("the publisher is closed", [], self.published)
            await self._changed.wait_for(lambda: len(self._queue) < self.max_pending)
            self._queue.append(event)
            self._sent += 1
            self._changed.notify_all()
        return eid_of(event)

    async def flush(self) -> None:
        """Wait until every event sent before it was published or failed; raise
        PublishError for the failures since the last flush.
        """
        async with self._changed:
            target = self._sent
            self._flushing += 1
            self._changed.notify_all()
            try:
                await self._changed.wait_for(lambda: self._done >= target)
            finally:
                self._flushing -= 1
            failed, self._failed = self._failed, []
        if failed:
            raise PublishError("background publishing failed", failed, self.published)

    async def close(self) -> None:
        try:
            await self.flush()
        finally:
            async with self._changed:
                self._closing = True
                self._changed.notify_all()
            await self._task

    async def __aenter__(self) -> AsyncBackgroundPublisher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _next_batch(self) -> list[Any] | None:
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._queue) or self._closing)
            if not self._queue:
                return None
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.linger
            while len(self._queue) < self.batch_size and not (self._flushing or self._closing):
                left = deadline - loop.time()
                if left <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), left)
            count = min(len(self._queue), self.batch_size)
            batch = [self._queue.popleft() for _ in range(count)]
            self._changed.notify_all()
            return batch

    async def _run(self) -> None:
        while (batch := await self._next_batch()) is not None:
            error: PublishError | None = None
            try:
                stored = await publish_pending(self._client, self._event_type, Pending.of(batch))
            except PublishError as failure:
                stored, error = failure.published, failure
            except Exception as failure:
                stored = 0
                error = PublishError(str(failure), Pending.of(batch).failures(str(failure)), 0)
            if error is not None:
                log.warning("background publishing failed: %s", error)
                if self._on_error is not None:
                    self._on_error(error)
            async with self._changed:
                self.published += stored
                self._done += len(batch)
                if error is not None:
                    self._failed.extend(error.failed)
                self._changed.notify_all()
