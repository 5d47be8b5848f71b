"""Exponential backoff with jitter, as go-nakadi's (cenkalti/backoff): pure arithmetic."""

from __future__ import annotations

import random
import time
from collections.abc import Callable


class Backoff:
    """Delays that grow by `multiplier` from `initial` to `maximum`, each spread by
    ±`jitter` (a fraction). `next_delay()` is None once `max_elapsed` seconds have passed
    since the first delay after the last `reset()` (None: never).
    """

    def __init__(
        self,
        initial: float = 0.1,
        maximum: float = 10.0,
        *,
        multiplier: float = 2.0,
        jitter: float = 0.5,
        max_elapsed: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.initial, self.maximum, self.multiplier = initial, maximum, multiplier
        self.jitter, self.max_elapsed = jitter, max_elapsed
        self._clock, self._rand = clock, rand
        self.reset()

    def reset(self) -> None:
        """Start again from `initial` (after a success)."""
        self._current = self.initial
        self._started: float | None = None

    def next_delay(self) -> float | None:
        """The next delay in seconds, or None when the elapsed time is used up."""
        now = self._clock()
        if self._started is None:
            self._started = now
        elif self.max_elapsed is not None and now - self._started >= self.max_elapsed:
            return None
        base = self._current
        self._current = min(self._current * self.multiplier, self.maximum)
        spread = base * self.jitter
        delay = base - spread + 2 * spread * self._rand()
        if self.max_elapsed is not None:
            delay = min(delay, max(0.0, self._started + self.max_elapsed - now))
        return delay
