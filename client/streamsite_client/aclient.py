"""The asyncio client: Client's API with coroutines (client.py)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import httpx

from streamsite_client import apublisher
from streamsite_client.aprocessor import AsyncHandler, AsyncProcessor
from streamsite_client.areader import AsyncReader
from streamsite_client.astream import AsyncSubscriptionStream
from streamsite_client.options import StreamOptions
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


class AsyncClient:
    """See Client; create streams, processors and publishers inside a running loop."""

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
        self.http = httpx.AsyncClient(headers=headers(self.token), timeout=timeout(request_timeout))

    async def publish(
        self, event_type: str, events: Iterable[Any], *, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> int:
        """See Client.publish."""
        return await apublisher.publish(self, event_type, events, batch_size)

    def publisher(self, event_type: str, **options: Any) -> apublisher.AsyncBackgroundPublisher:
        """A background publisher (a task): `await send()`, `await flush()`, `await close()`."""
        return apublisher.AsyncBackgroundPublisher(self, event_type, **options)

    def stream(
        self, subscription_id: str, options: StreamOptions | None = None
    ) -> AsyncSubscriptionStream:
        return AsyncSubscriptionStream(self, subscription_id, options)

    def processor(
        self,
        subscription_id: str,
        handler: AsyncHandler,
        *,
        streams: int = 1,
        options: StreamOptions | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> AsyncProcessor:
        return AsyncProcessor(self, subscription_id, handler, streams, options, on_error)

    def reader(self, *event_types: str, **options: Any) -> AsyncReader:
        return AsyncReader(self, list(event_types), **options)

    async def ack(self, subscription_id: str, items: list[dict[str, str]]) -> Any:
        return await self._call(
            "POST", f"/api/subscriptions/{subscription_id}/acks", {"items": items}
        )

    async def stats(self, subscription_id: str) -> dict[str, Any]:
        path = f"/api/subscriptions/{subscription_id}/stats?show_time_lag=true"
        return await self._call("GET", path) or {}

    async def get(self, path: str) -> Any:
        return await self._call("GET", path)

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        error: Exception | None = None
        for _ in self.endpoints.urls:
            url = self.endpoints.current()
            try:
                response = await self.http.request(method, url + path, json=body)
            except NETWORK_ERRORS as failure:
                self.endpoints.failed(url)
                error = failure
                continue
            if response.status_code >= 400:
                raise api_error(response, f"{method} {path}")
            return body_of(response)
        assert error is not None
        raise error

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
