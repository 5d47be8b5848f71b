"""A processor for sync code: N subscription streams in parallel, one thread each, a
handler per batch, a commit (or, on a shared subscription, an ack) after each success, the
stream reopened after a failure, and keep-alive commits while a handler runs long.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from streamsite_client.backoff import Backoff
from streamsite_client.errors import ApiError, StreamEnded, StreamsiteError
from streamsite_client.options import StreamOptions
from streamsite_client.stream import SubscriptionStream
from streamsite_client.transport import NETWORK_ERRORS
from streamsite_client.wire import Batch

if TYPE_CHECKING:
    from streamsite_client.client import Client

log = logging.getLogger(__name__)

Handler = Callable[[Batch], None]


@dataclass
class _Busy:
    batch: Batch
    last_sign: float  # when the handler started, or the last keep-alive commit


class Processor:
    """Runs `handler` on every batch of the subscription, over `streams` streams.

    `start()` starts the threads, `stop()` closes the streams after the batches being
    handled; `run()` blocks until a stop or an error no stream can get past, which it raises.
    """

    def __init__(
        self,
        client: Client,
        subscription_id: str,
        handler: Handler,
        streams: int = 1,
        options: StreamOptions | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.client, self.subscription_id, self.handler = client, subscription_id, handler
        self.options = options or StreamOptions()
        self.count = streams
        self.on_error = on_error
        self.streams: list[SubscriptionStream] = []
        self.failure: Exception | None = None
        self._stopping = threading.Event()
        self._busy: dict[int, _Busy] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> Processor:
        for i in range(self.count):
            endpoints = self.client.endpoints.starting_at(i)
            stream = SubscriptionStream(
                self.client, self.subscription_id, self.options, endpoints=endpoints
            )
            self.streams.append(stream)
            self._threads.append(threading.Thread(target=self._work, args=(i, stream), daemon=True))
        self._threads.append(threading.Thread(target=self._keep_alive, daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def run(self) -> None:
        """Start (unless started) and block until stopped; raise what stopped it."""
        if not self._threads:
            self.start()
        try:
            self._stopping.wait()
        finally:
            self.stop()
        if self.failure is not None:
            raise self.failure

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to `timeout` seconds for the processor to stop (by `stop()` or by an
        error in `failure`); True when it has.
        """
        return self._stopping.wait(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Let the handlers finish their batches, then close every stream."""
        self._stopping.set()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)
        for stream in self.streams:
            stream.close()

    def __enter__(self) -> Processor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _work(self, index: int, stream: SubscriptionStream) -> None:
        failures = Backoff(self.options.initial_retry_interval, self.options.max_retry_interval)
        while not self._stopping.is_set():
            try:
                batch = stream.next_events(timeout=0.2)
            except TimeoutError:
                continue
            except (StreamEnded, ApiError) as error:
                if not self._stopping.is_set():
                    self.failure = error
                    self._report(error)
                self._stopping.set()
                return
            if not self._handle(index, batch):
                stream.reconnect(failures.next_delay() or 0.0, failed=batch)
                continue
            failures.reset()
            self._settle(stream, batch)

    def _handle(self, index: int, batch: Batch) -> bool:
        with self._lock:
            self._busy[index] = _Busy(batch, time.monotonic())
        try:
            self.handler(batch)
            return True
        except Exception as error:
            log.warning("the handler failed on %s; reopening the stream: %s", batch.cursor, error)
            self._report(error)
            return False
        finally:
            with self._lock:
                del self._busy[index]

    def _settle(self, stream: SubscriptionStream, batch: Batch) -> None:
        """Commit the batch (ack its events on a shared subscription). A refused commit is
        reported and passed over: its events are delivered again.
        """
        try:
            if batch.offsets:
                self.client.ack(self.subscription_id, batch.ack_items())
            else:
                stream.commit(batch)
        except (StreamsiteError, *NETWORK_ERRORS) as error:
            log.warning("commit of %s failed; its events come again: %s", batch.cursor, error)
            self._report(error)

    def _keep_alive(self) -> None:
        """Every few seconds, a keep-alive commit for each handler running longer than the
        keep-alive interval (ordered subscriptions: shared ones have no commit timer).
        """
        interval = self.options.keep_alive_interval(self._subscription_commit_timeout())
        while not self._stopping.wait(min(1.0, interval / 4)):
            now = time.monotonic()
            with self._lock:
                due = [
                    (i, busy)
                    for i, busy in self._busy.items()
                    if now - busy.last_sign >= interval and not busy.batch.offsets
                ]
            for index, busy in due:
                if self.streams[index].keep_alive(busy.batch):
                    log.debug("keep-alive commit for %s", busy.batch.partition)
                busy.last_sign = now

    def _subscription_commit_timeout(self) -> float | None:
        if self.options.commit_timeout is not None:
            return None
        try:
            found = self.client.get(f"/api/subscriptions/{self.subscription_id}") or {}
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
