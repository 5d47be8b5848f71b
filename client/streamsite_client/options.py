"""A subscription stream's options, at parity with go-nakadi's StreamOptions, and what a
stream does after each close reason (README.md, "Typed closes"). Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

NotifyErr = Callable[[Exception, float], None]  # the error, and the delay before a retry
NotifyOK = Callable[[], None]  # a stream (re)connected, or a commit went through after errors


class After(Enum):
    """What a stream does once its server ended it."""

    RECONNECT_NOW = "reconnect at once"  # a deploy, a rebalance, a normal end
    BACKOFF = "reconnect after a backoff"  # an error, or a close that says we were too slow
    STOP = "stop"  # nothing to reconnect to


# Streams and readers: the server went away or moved partitions, or the stream reached the
# end the client asked for; none of them is the client's fault, so no backoff.
RECONNECT_NOW = {
    "shutdown",
    "rebalance",
    "stream_timeout",
    "stream_limit",
    "keep_alive_limit",
    "cursor_reset",
    "slow_consumer",  # readers: resume from the Last-Event-ID at once
}
STOP = {"subscription_deleted", "token_expired"}


def after_close(reason: str | None) -> After:
    """The step after a stream ended with `reason` (None: cut without a close)."""
    if reason in RECONNECT_NOW:
        return After.RECONNECT_NOW
    if reason in STOP:
        return After.STOP
    return After.BACKOFF  # commit_timeout, a cut connection, a reason this client does not know


@dataclass
class StreamOptions:
    """go-nakadi's StreamOptions, plus the rest of Nakadi's stream parameters.

    None leaves a parameter to the server (the subscription's defaults). The retry
    intervals bound the reconnect backoff; `commit_max_elapsed_time` bounds a commit's
    retries when `commit_retry` is on.
    """

    batch_limit: int | None = None
    flush_timeout: float | None = None  # batch_flush_timeout, seconds
    max_uncommitted_events: int | None = None
    initial_retry_interval: float = 0.5
    max_retry_interval: float = 10.0
    commit_max_elapsed_time: float = 30.0
    commit_retry: bool = True
    notify_err: NotifyErr | None = None
    notify_ok: NotifyOK | None = None
    stream_limit: int | None = None
    stream_timeout: float | None = None
    commit_timeout: float | None = None  # seconds; the subscription's when None
    extra_params: dict[str, Any] | None = None

    def params(self) -> dict[str, str]:
        """The query parameters of `GET /api/subscriptions/{id}/events`."""
        values: dict[str, Any] = {
            "batch_limit": self.batch_limit,
            "batch_flush_timeout": self.flush_timeout,
            "max_uncommitted_events": self.max_uncommitted_events,
            "stream_limit": self.stream_limit,
            "stream_timeout": self.stream_timeout,
            "commit_timeout": self.commit_timeout,
            **(self.extra_params or {}),
        }
        return {k: _number(v) for k, v in values.items() if v is not None}

    def read_timeout(self) -> float | None:
        """How long a silent connection is trusted: keep-alives come every flush timeout."""
        return None if self.flush_timeout is None else 3 * self.flush_timeout + 10

    def keep_alive_interval(self, subscriptions: float | None = None) -> float:
        """How often a long handler's partition gets a keep-alive commit: a third of the
        commit timeout (this stream's, else the subscription's, else Nakadi's 60 s).
        """
        return (self.commit_timeout or subscriptions or 60.0) / 3


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
