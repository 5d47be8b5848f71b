"""Where the client sends requests: one or several base URLs of the same Streamsite (its
servers share Redis and the database), the token, and errors read from answers.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from typing import Any

import httpx

from streamsite_client.backoff import Backoff
from streamsite_client.errors import ApiError

USER_AGENT = "streamsite-client/0.1"
# Failures after which another server is tried: it may be gone, or draining.
NETWORK_ERRORS = (httpx.TransportError,)


class Endpoints:
    """Base URLs tried in turn: `current` until `failed` moves to the next one."""

    def __init__(self, urls: str | Sequence[str]) -> None:
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        if not self.urls:
            raise ValueError("at least one base URL is needed")
        self.urls = [u.rstrip("/") for u in self.urls]
        self._index = 0
        self._lock = threading.Lock()

    def current(self) -> str:
        return self.urls[self._index % len(self.urls)]

    def failed(self, url: str) -> None:
        """`url` failed: the next caller tries the next one (unless another caller moved on
        already).
        """
        with self._lock:
            if self.current() == url:
                self._index += 1

    def starting_at(self, offset: int) -> Endpoints:
        """A copy that starts at another URL: parallel streams spread over the servers."""
        other = Endpoints(self.urls)
        other._index = offset
        return other


def default_urls() -> list[str]:
    """`STREAMSITE_URL`, comma-separated for several servers; a local server without it."""
    value = os.environ.get("STREAMSITE_URL") or "http://127.0.0.1:8000"
    return [url.strip() for url in value.split(",") if url.strip()]


def headers(token: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    found = {"User-Agent": USER_AGENT}
    if token:
        found["Authorization"] = f"Bearer {token}"
    found.update(extra or {})
    return found


def body_of(response: httpx.Response) -> Any:
    """The JSON body, or None when there is none or it is not JSON."""
    try:
        return json.loads(response.content) if response.content else None
    except ValueError:
        return None


def api_error(response: httpx.Response, what: str = "", cls: type[ApiError] = ApiError) -> ApiError:
    """The error for an error answer, with the problem+json the server sent."""
    body = body_of(response)
    if not isinstance(body, dict):
        text = response.text[:500] if response.content else response.reason_phrase
        body = {"status": response.status_code, "detail": text}
    error = cls(response.status_code, body, what)
    error.retry_after = retry_after(response)
    return error


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def timeout(read: float | None, connect: float = 5.0) -> httpx.Timeout:
    return httpx.Timeout(connect, read=read, write=connect, pool=connect)


class RetryPolicy:
    """Publishing's and requests' retries: exponential backoff from `initial` to `maximum`
    seconds, with jitter, for at most `max_elapsed` seconds.
    """

    def __init__(self, initial: float = 0.1, maximum: float = 5.0, max_elapsed: float = 60.0):
        self.initial, self.maximum, self.max_elapsed = initial, maximum, max_elapsed

    def backoff(self) -> Backoff:
        return Backoff(self.initial, self.maximum, max_elapsed=self.max_elapsed)
