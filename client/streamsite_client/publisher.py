"""Publishing from sync code: batches with retries, and a background publisher (a thread)
that batches by size and linger time (README.md, "Publishing guarantees").
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from streamsite_client.errors import FailedEvent, PublishError, PublishRefused
from streamsite_client.publishing import Pending, eid_of, judge, prepare, retryable
from streamsite_client.transport import NETWORK_ERRORS, api_error, body_of

if TYPE_CHECKING:
    from streamsite_client.client import Client

log = logging.getLogger(__name__)

OnError = Callable[[PublishError], None]


def publish(client: Client, event_type: str, events: Iterable[Any], batch_size: int) -> int:
    """Store `events` in batches of `batch_size`; returns how many were stored. Raises
    PublishError (PublishRefused for a 422) naming the events not stored.
    """
    items = list(events)
    published = 0
    for start in range(0, len(items), batch_size):
        pending = Pending.of(items[start : start + batch_size], start)
        try:
            published += publish_pending(client, event_type, pending)
        except PublishError as error:
            error.published += published
            raise
    return published


def publish_pending(client: Client, event_type: str, pending: Pending) -> int:
    """One batch, retried until stored: only the failed events after a 207, all of them
    after a 5xx or a network error, never after a 422.
    """
    backoff = client.retry.backoff()
    stored = 0
    path = f"/api/event-types/{quote(event_type, safe='')}/events"
    while True:
        url = client.endpoints.current()
        try:
            response = client.http.post(url + path, json=pending.events)
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
                    client.endpoints.failed(url)  # maybe draining: try another server
                problem = str(api_error(response))
            else:
                raise api_error(response, f"publishing to {event_type}")
        delay = backoff.next_delay()
        if delay is None:
            raise PublishError(f"gave up retrying ({problem})", pending.failures(problem), stored)
        log.info("publishing %d events again in %.2fs: %s", len(pending.indexed), delay, problem)
        time.sleep(delay)


class BackgroundPublisher:
    """Collects events from any thread and publishes them from one thread of its own, in
    batches of up to `batch_size`, waiting at most `linger` seconds for a batch to fill.
    `send` blocks while `max_pending` events wait. Failures go to `on_error` and are
    raised by the next `flush()` or `close()`.
    """

    def __init__(
        self,
        client: Client,
        event_type: str,
        *,
        batch_size: int = 500,
        linger: float = 0.05,
        max_pending: int = 10_000,
        on_error: OnError | None = None,
    ) -> None:
        self._client, self._event_type = client, event_type
        self.batch_size, self.linger, self.max_pending = batch_size, linger, max_pending
        self._on_error = on_error
        self._queue: deque[Any] = deque()
        self._changed = threading.Condition()
        self._sent = 0  # events handed to send()
        self._done = 0  # events published or failed
        self._flushing = 0  # callers waiting in flush(): publish without lingering
        self._closing = False
        self._failed: list[FailedEvent] = []
        self.published = 0
        self._thread = threading.Thread(target=self._run, name="streamsite-publisher", daemon=True)
        self._thread.start()

    def send(self, event: Any) -> str:
        """Queue one event (its eid and occurred_at filled in now); returns its eid."""
        event = prepare(event)
        with self._changed:
            if self._closing:
                raise PublishError("the publisher is closed", [], self.published)
            self._changed.wait_for(lambda: len(self._queue) < self.max_pending)
            self._queue.append(event)
            self._sent += 1
            self._changed.notify_all()
        return eid_of(event)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every event sent before it was published or failed; raise
        PublishError for the failures since the last flush.
        """
        with self._changed:
            target = self._sent
            self._flushing += 1
            self._changed.notify_all()
            try:
                if not self._changed.wait_for(lambda: self._done >= target, timeout):
                    raise TimeoutError(f"{target - self._done} events still unpublished")
            finally:
                self._flushing -= 1
            failed, self._failed = self._failed, []
        if failed:
            raise PublishError("background publishing failed", failed, self.published)

    def close(self, timeout: float | None = None) -> None:
        """Publish what is queued, stop the thread, raise what failed."""
        try:
            self.flush(timeout)
        finally:
            with self._changed:
                self._closing = True
                self._changed.notify_all()
            self._thread.join(timeout)

    def __enter__(self) -> BackgroundPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next_batch(self) -> list[Any] | None:
        with self._changed:
            self._changed.wait_for(lambda: bool(self._queue) or self._closing)
            if not self._queue:
                return None
            deadline = time.monotonic() + self.linger
            while len(self._queue) < self.batch_size and not (self._flushing or self._closing):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            count = min(len(self._queue), self.batch_size)
            batch = [self._queue.popleft() for _ in range(count)]
            self._changed.notify_all()  # room for blocked senders
            return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                stored = publish_pending(self._client, self._event_type, Pending.of(batch))
                error = None
            except PublishError as failure:
                stored, error = failure.published, failure
            except Exception as failure:  # an unexpected answer: every event failed
                error = PublishError(str(failure), Pending.of(batch).failures(str(failure)), 0)
                stored = 0
            if error is not None:
                log.warning("background publishing failed: %s", error)
                if self._on_error is not None:
                    self._on_error(error)
            with self._changed:
                self.published += stored
                self._done += len(batch)
                if error is not None:
                    self._failed.extend(error.failed)
                self._changed.notify_all()
