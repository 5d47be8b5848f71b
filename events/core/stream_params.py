"""Nakadi's stream parameters: defaults, limits and the combinations that are refused.

Pure; the streaming endpoint answers a StreamParamError with 422 before any byte is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from events.core.defaults import COMMIT_TIMEOUT, MAX_COMMIT_TIMEOUT
from events.core.numbers import whole_number

MAX_STREAM_TIMEOUT = 4200  # seconds, as Nakadi
DEFAULT_STREAM_TIMEOUT = 3600


class StreamParamError(ValueError):
    """An invalid parameter or combination; the message names it, for the client."""


@dataclass(frozen=True)
class StreamParams:
    batch_limit: int = 1
    stream_limit: int = 0  # events; 0: unlimited
    batch_flush_timeout: float = 30.0
    batch_timespan: float = 0.0  # 0: off
    stream_timeout: float = DEFAULT_STREAM_TIMEOUT
    stream_keep_alive_limit: int = 0  # empty batches in a row; 0: unlimited
    max_uncommitted_events: int = 10
    commit_timeout: float = COMMIT_TIMEOUT


_INTEGERS = {
    "batch_limit": 1,
    "stream_limit": 0,
    "stream_keep_alive_limit": 0,
    "max_uncommitted_events": 1,
}
_SECONDS = ("batch_flush_timeout", "batch_timespan", "stream_timeout", "commit_timeout")


def _number(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, str):
        value = value.strip()
        if not value.isdecimal():
            raise StreamParamError(f"{name} must be a whole number, not {value!r}")
        value = int(value)
    number = whole_number(value)
    if number is None:
        raise StreamParamError(f"{name} must be a whole number")
    value = number
    if value < minimum:
        raise StreamParamError(f"{name} must be at least {minimum}")
    return value


def parse(values: Mapping[str, Any]) -> StreamParams:
    """Parameters from a query string or a JSON body; 0 means Nakadi's default where it does."""
    # Unknown parameters are ignored, as Nakadi does: clients send their own extras.
    counts = {
        name: _number(name, values[name], low) for name, low in _INTEGERS.items() if name in values
    }
    seconds = {name: float(_number(name, values[name], 0)) for name in _SECONDS if name in values}
    defaults = StreamParams()
    # Nakadi: 0 (or unset) means the default for these; stream_timeout above the maximum too.
    for name in ("batch_flush_timeout", "stream_timeout", "commit_timeout"):
        if not seconds.get(name):
            seconds[name] = getattr(defaults, name)
    if seconds["stream_timeout"] > MAX_STREAM_TIMEOUT:
        seconds["stream_timeout"] = defaults.stream_timeout
    params = StreamParams(
        batch_limit=counts.get("batch_limit", defaults.batch_limit),
        stream_limit=counts.get("stream_limit", defaults.stream_limit),
        stream_keep_alive_limit=counts.get(
            "stream_keep_alive_limit", defaults.stream_keep_alive_limit
        ),
        max_uncommitted_events=counts.get(
            "max_uncommitted_events", defaults.max_uncommitted_events
        ),
        batch_flush_timeout=seconds["batch_flush_timeout"],
        batch_timespan=seconds.get("batch_timespan", defaults.batch_timespan),
        stream_timeout=seconds["stream_timeout"],
        commit_timeout=seconds["commit_timeout"],
    )
    if params.commit_timeout > MAX_COMMIT_TIMEOUT:
        raise StreamParamError(f"commit_timeout must be at most {MAX_COMMIT_TIMEOUT}")
    if params.stream_limit and params.stream_limit < params.batch_limit:
        raise StreamParamError("stream_limit must be at least batch_limit (or 0, unlimited)")
    if params.stream_timeout < params.batch_flush_timeout:
        raise StreamParamError("stream_timeout must be at least batch_flush_timeout")
    return params
