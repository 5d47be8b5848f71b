"""A subscription stream for sync code, at parity with go-nakadi's StreamAPI: a thread reads
the NDJSON stream and reconnects with backoff; `next_events`, `commit` and `close` are the
caller's (README.md, "Consuming a subscription").
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
import time
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
    from streamsite_client.client import Client

log = logging.getLogger(__name__)


class SubscriptionStream:
    """One consumer of a subscription. Batches arrive from the stream's thread; the caller
    takes them with `next_events()` and commits them with `commit()`.
    """

    def __init__(
        self,
        client: Client,
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
        self._queue: queue.Queue[Batch | BaseException] = queue.Queue()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._response: httpx.Response | None = None
        self._abandoned: set[str] = set()
        self._reconnect_delay: float | None = None
        self._committed = commits.Committed()
        self._http = httpx.Client(
            headers=headers(client.token), timeout=timeout(self.options.read_timeout())
        )
        self._thread = threading.Thread(target=self._run, name="streamsite-stream", daemon=True)
        self._thread.start()

    # -- the caller's side ------------------------------------------------------------------

    def next_events(self, timeout: float | None = None, *, keep_alives: bool = False) -> Batch:
        """The next batch with events (keep-alives too when asked). Raises TimeoutError
        after `timeout` seconds, StreamEnded once closed, an ApiError the stream cannot get
        past.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                item = self._queue.get(timeout=left)
            except queue.Empty:
                raise TimeoutError("no batch yet") from None
            if isinstance(item, BaseException):
                self._queue.put(item)  # every later call raises it too
                raise item
            if (item.events or keep_alives) and item.stream_id not in self._abandoned:
                return item

    def commit(
        self, *items: Batch | dict[str, str], stream_id: str = "", retry: bool | None = None
    ) -> list[dict[str, Any]]:
        """Commit batches (or cursors, of `stream_id`: the current stream's by default);
        returns the server's result per cursor. Retried on network errors and 5xx while
        `commit_retry` (or `retry`) is on, for at most `commit_max_elapsed_time`; a 422
        (CommitRefused) is never retried.
        """
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
                response = self.client.http.post(
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
            time.sleep(delay)

    def keep_alive(self, batch: Batch) -> bool:
        """Commit the partition's committed cursor again (answered `outdated`), which
        restarts the stream's commit timer while `batch` is being worked on. True when
        the server took it.
        """
        cursor = self._committed.keep_alive_cursor(batch)
        try:
            self.commit(cursor, stream_id=batch.stream_id, retry=False)
        except (StreamsiteError, *NETWORK_ERRORS) as error:
            log.info("keep-alive commit of %s failed: %s", batch.partition, error)
            return False
        return True

    def reconnect(self, delay: float = 0.0, failed: Batch | None = None) -> None:
        """Drop the current stream (its batches not yet taken are skipped, what it sent and
        was not committed goes to the partitions' next owner) and open a new one after
        `delay` seconds: after a handler failed on `failed` (whose stream's batches are
        skipped too, should it be an earlier one).
        """
        with self._lock:
            self._abandoned.update(s for s in (self.stream_id, failed and failed.stream_id) if s)
            self._reconnect_delay = delay
            self._disconnect()

    def close(self) -> None:
        """Disconnect and stop; `next_events` raises StreamEnded from now on."""
        self._closed.set()
        with self._lock:
            self._disconnect()
        self._queue.put(StreamEnded("the stream was closed", "closed"))
        self._thread.join(10)
        self._http.close()

    def __enter__(self) -> SubscriptionStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the stream's thread ----------------------------------------------------------------

    def _run(self) -> None:
        options = self.options
        backoff = Backoff(options.initial_retry_interval, options.max_retry_interval)
        while not self._closed.is_set():
            url = self._endpoints.current()
            wait: float | None = None
            reason: str | None = None
            error: Exception
            try:
                reason = self._read(url, backoff)
                step, error = after_close(reason), commits.close_error(reason)
            except NETWORK_ERRORS as failure:
                step, error = After.BACKOFF, failure
                if self._reconnect_delay is None:
                    self._endpoints.failed(url)
            except ApiError as failure:
                if not commits.retryable(failure.status):
                    self._queue.put(failure)
                    return
                step, error = After.BACKOFF, failure
                if failure.status == 503:
                    self._endpoints.failed(url)  # draining: another server, if there is one
                wait = failure.retry_after
            except Exception as failure:  # a line that does not parse: a server's bug
                log.exception("the stream failed")
                step, error = After.BACKOFF, failure
            if self._closed.is_set():
                return
            with self._lock:
                asked, self._reconnect_delay = self._reconnect_delay, None
            if asked is not None:
                step, wait = After.BACKOFF, asked
            if step is After.STOP:
                self._queue.put(StreamEnded(f"the stream ended: {error}", str(error)))
                return
            if step is After.RECONNECT_NOW:
                if reason == "shutdown":
                    self._endpoints.failed(url)  # that server is going away: try the next
                log.info("stream closed (%s): reconnecting at once", error)
                backoff.reset()
                continue
            delay = wait if wait is not None else (backoff.next_delay() or 0.0)
            self._notify_err(error or StreamsiteError("the stream ended"), delay)
            self._closed.wait(delay)

    def _read(self, url: str, backoff: Backoff) -> str | None:
        """One connection: put its batches on the queue; its close reason (None: cut)."""
        path = f"/api/subscriptions/{self.subscription_id}/events"
        with self._http.stream("GET", url + path, params=self.options.params()) as response:
            if response.status_code != 200:
                response.read()
                raise api_error(response, "opening the stream")
            stream_id = response.headers.get("X-Nakadi-StreamId", "")
            with self._lock:
                if self._closed.is_set():
                    return None
                self._response, self.stream_id = response, stream_id
            backoff.reset()
            if self.options.notify_ok is not None:
                self.options.notify_ok()
            reason = None
            try:
                for line in response.iter_lines():
                    if line.strip():
                        batch = parse_batch(line, stream_id)
                        reason = batch.close_reason or reason
                        self._queue.put(batch)
            finally:
                with self._lock:
                    self._response = None
            return reason

    def _disconnect(self) -> None:
        """Shut the socket down, which wakes the reading thread at once (a bare close does
        not, on Linux), so that the server sees the client leave now.
        """
        response = self._response
        if response is None:
            return
        network = response.extensions.get("network_stream")
        sock = network.get_extra_info("socket") if network is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _notify_err(self, error: Exception, delay: float) -> None:
        log.info("stream error, retrying in %.2fs: %s", delay, error)
        if self.options.notify_err is not None:
            self.options.notify_err(error, delay)
