"""Which entries of a partition a subscription delivers: its topic filter, and replays of
dead letters meant for one subscription only. Pure functions, no Redis.

Entries a subscription does not deliver still advance it (they are acked), or they would
come back forever (docs/architecture.md#redis-layout).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from events.core.entries import EVENT, REPLAY_FOR, Fields, Keep

MAX_PATTERNS = 50


def matcher(patterns: Sequence[str]) -> Callable[[str | None], bool]:
    """Whether a topic matches one of the patterns: exact names, or globs (`*`, `?`,
    `[…]`; `*` also matches dots). No topic never matches.
    """
    regex = re.compile("|".join(fnmatch.translate(p) for p in patterns)) if patterns else None

    def matches(topic: str | None) -> bool:
        return topic is not None and regex is not None and regex.match(topic) is not None

    return matches


def topic_of(payload: bytes) -> str | None:
    """The event's metadata.topic, if it is a string."""
    try:
        event: Any = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    metadata = event.get("metadata") if isinstance(event, dict) else None
    topic = metadata.get("topic") if isinstance(metadata, dict) else None
    return topic if isinstance(topic, str) else None


def keeper(subscription: str, patterns: Sequence[str]) -> Keep:
    """The test of whether `subscription` delivers an entry. Events are parsed only when
    there is a topic filter.
    """
    own = subscription.encode()
    matches = matcher(patterns)

    def keep(fields: Fields) -> bool:
        target = fields.get(REPLAY_FOR)
        if target is not None and target != own:
            return False
        return not patterns or matches(topic_of(fields[EVENT]))

    return keep


def check_patterns(value: Any) -> list[str]:
    """A subscription's `topics`, checked: a list of non-empty strings (ValueError if not)."""
    if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value):
        raise ValueError("topics must be a list of non-empty strings (names or globs)")
    if len(value) > MAX_PATTERNS:
        raise ValueError(f"topics may hold at most {MAX_PATTERNS} patterns")
    return sorted(set(value))
