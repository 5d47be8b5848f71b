"""The sync client: one `Client` per application, for publishing, consuming, reading and
the subscription's stats. `AsyncClient` (aclient.py) is the same for asyncio code.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import httpx

from streamsite_client import publisher
from streamsite_client.options import StreamOptions
from streamsite_client.processor import Handler, Processor
from streamsite_client.reader import Reader
from streamsite_client.stream import SubscriptionStream
from streamsite_client.transport import (
    NETWORK_ERRORS,
    Endpoints,
    RetryPolicy,
    api_error,
    body_of,
    default_urls,
    headers,
    timeout,
)

DEFAULT_BATCH_SIZE = 1000


class Client:
    """Speaks Streamsite's HTTP API at `url` (or each of several base URLs of the same
    deployment, tried in turn when one fails), with `token` as the bearer token.
    `STREAMSITE_URL` (comma-separated for several) and `STREAMSITE_TOKEN` are the defaults.
    """

    def __init__(
        self,
        url: str | Sequence[str] | None = None,
        token: str | None = None,
        *,
        retry: RetryPolicy | None = None,
        request_timeout: float = 30.0,
    ) -> None:
        self.endpoints = Endpoints(url or default_urls())
        self.token = token if token is not None else os.environ.get("STREAMSITE_TOKEN")
        self.retry = retry or RetryPolicy()
        self.http = httpx.Client(headers=headers(self.token), timeout=timeout(request_timeout))

    def publish(
        self, event_type: str, events: Iterable[Any], *, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> int:
        """Store `events`, in batches, with retries; returns how many were stored. Fills in
        `metadata.eid` and `occurred_at`; raises PublishError naming the events not stored.
        """
        return publisher.publish(self, event_type, events, batch_size)

    def publisher(self, event_type: str, **options: Any) -> publisher.BackgroundPublisher:
        """A background publisher (a thread) for high rates: `send()`, `flush()`, `close()`."""
        return publisher.BackgroundPublisher(self, event_type, **options)

    def stream(
        self, subscription_id: str, options: StreamOptions | None = None
    ) -> SubscriptionStream:
        """A subscription stream: `next_events()`, `commit()`, `close()` (go-nakadi's API)."""
        return SubscriptionStream(self, subscription_id, options)

    def processor(
        self,
        subscription_id: str,
        handler: Handler,
        *,
        streams: int = 1,
        options: StreamOptions | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> Processor:
        """`streams` streams in parallel, `handler(batch)` per batch; commits (or acks) on
        success, reopens the stream on failure. `start()`/`stop()` or a `with` block.
        """
        return Processor(self, subscription_id, handler, streams, options, on_error)

    def reader(self, *event_types: str, **options: Any) -> Reader:
        """A reader of every event of the types (SSE), resuming with Last-Event-ID."""
        return Reader(self, list(event_types), **options)

    def ack(self, subscription_id: str, items: list[dict[str, str]]) -> dict[str, Any] | None:
        """Shared subscriptions: acknowledge events; None when all were acked, else the
        server's result per item.
        """
        return self._call("POST", f"/api/subscriptions/{subscription_id}/acks", {"items": items})

    def stats(self, subscription_id: str) -> dict[str, Any]:
        """GET /api/subscriptions/{id}/stats with the time lag."""
        path = f"/api/subscriptions/{subscription_id}/stats?show_time_lag=true"
        return self._call("GET", path) or {}

    def get(self, path: str) -> Any:
        return self._call("GET", path)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        """One request on the first server that answers; ApiError for an error status."""
        error: Exception | None = None
        for _ in self.endpoints.urls:
            url = self.endpoints.current()
            try:
                response = self.http.request(method, url + path, json=body)
            except NETWORK_ERRORS as failure:
                self.endpoints.failed(url)
                error = failure
                continue
            if response.status_code >= 400:
                raise api_error(response, f"{method} {path}")
            return body_of(response)
        assert error is not None
        raise error

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
