"""A processor for asyncio code: N subscription streams as tasks, an async handler per
batch, commit (or ack) on success, the stream reopened on failure, keep-alive commits
while a handler runs long. The same rules as processor.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from streamsite_client.astream import AsyncSubscriptionStream
from streamsite_client.backoff import Backoff
from streamsite_client.errors import ApiError, StreamEnded, StreamsiteError
from streamsite_client.options import StreamOptions
from streamsite_client.transport import NETWORK_ERRORS
from streamsite_client.wire import Batch

if TYPE_CHECKING:
    from streamsite_client.aclient import AsyncClient

log = logging.getLogger(__name__)

AsyncHandler = Callable[[Batch], Awaitable[None]]


class AsyncProcessor:
    """Runs `await handler(batch)` on every batch, over `streams` streams.

    `await run()` until `stop()` or an error no stream can get past (raised); or
    `async with` it to run it in the background.
    """

    def __init__(
        self,
        client: AsyncClient,
        subscription_id: str,
        handler: AsyncHandler,
        streams: int = 1,
        options: StreamOptions | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.client, self.subscription_id, self.handler = client, subscription_id, handler
        self.options = options or StreamOptions()
        self.count, self.on_error = streams, on_error
        self.streams: list[AsyncSubscriptionStream] = []
        self.failure: Exception | None = None
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._keep_alive_interval: float | None = None

    def start(self) -> AsyncProcessor:
        for i in range(self.count):
            stream = AsyncSubscriptionStream(
                self.client,
                self.subscription_id,
                self.options,
                endpoints=self.client.endpoints.starting_at(i),
            )
            self.streams.append(stream)
            self._tasks.append(asyncio.get_running_loop().create_task(self._work(stream)))
        return self

    async def run(self) -> None:
        if not self._tasks:
            self.start()
        try:
            await self._stopping.wait()
        finally:
            await self.stop()
        if self.failure is not None:
            raise self.failure

    async def stop(self) -> None:
        """Let the handlers finish their batches, then close every stream."""
        self._stopping.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for stream in self.streams:
            await stream.close()

    async def __aenter__(self) -> AsyncProcessor:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _work(self, stream: AsyncSubscriptionStream) -> None:
        failures = Backoff(self.options.initial_retry_interval, self.options.max_retry_interval)
        if self._keep_alive_interval is None:
            self._keep_alive_interval = self.options.keep_alive_interval(
                await self._subscription_commit_timeout()
            )
        while not self._stopping.is_set():
            try:
                batch = await stream.next_events(timeout=0.2)
            except TimeoutError:
                continue
            except (StreamEnded, ApiError) as error:
                if not self._stopping.is_set():
                    self.failure = error
                    self._report(error)
                self._stopping.set()
                return
            if not await self._handle(stream, batch):
                stream.reconnect(failures.next_delay() or 0.0, failed=batch)
                continue
            failures.reset()
            try:
                if batch.offsets:
                    await self.client.ack(self.subscription_id, batch.ack_items())
                else:
                    await stream.commit(batch)
            except (StreamsiteError, *NETWORK_ERRORS) as error:
                log.warning("commit of %s failed; its events come again: %s", batch.cursor, error)
                self._report(error)

    async def _handle(self, stream: AsyncSubscriptionStream, batch: Batch) -> bool:
        keeping = None
        if not batch.offsets:
            keeping = asyncio.get_running_loop().create_task(self._keep_alive(stream, batch))
        try:
            await self.handler(batch)
            return True
        except Exception as error:
            log.warning("the handler failed on %s; reopening the stream: %s", batch.cursor, error)
            self._report(error)
            return False
        finally:
            if keeping is not None:
                keeping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeping

    async def _keep_alive(self, stream: AsyncSubscriptionStream, batch: Batch) -> None:
        interval = self._keep_alive_interval or self.options.keep_alive_interval()
        while True:
            await asyncio.sleep(interval)
            await stream.keep_alive(batch)

    async def _subscription_commit_timeout(self) -> float | None:
        if self.options.commit_timeout is not None:
            return None
        try:
            found = await self.client.get(f"/api/subscriptions/{self.subscription_id}") or {}
        except (StreamsiteError, *NETWORK_ERRORS) as error:
            log.info("the subscription's commit timeout is unknown: %s", error)
            return None
        value = found.get("commit_timeout")
        return float(value) if isinstance(value, int | float) else None

    def _report(self, error: Exception) -> None:
        if self.on_error is not None:
            try:
                self.on_error(error)
            except Exception:
                log.exception("on_error failed")
