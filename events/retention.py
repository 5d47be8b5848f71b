"""Retention: trim every partition of every event type by its age and length limits.

Publishing trims a partition as it appends to it; this is the periodic pass (the
`retention` job) for partitions that nobody publishes to any more, whose old events would
otherwise stay forever. The trim itself is publishing's script (`streams.TRIM_LUA_FUNCTION`):
approximate, on the Redis server's clock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import redis

from events.models import EventType
from events.store.keys import log_key
from events.store.lua import NOW_MS_LUA, TRIM_LUA_FUNCTION

logger = logging.getLogger(__name__)

BATCH = 256  # partitions trimmed per pipelined round trip

# Trim one partition. KEYS[1] the partition's stream
# ARGV[1] max events (0: no length limit), ARGV[2] max age in ms (0: no time limit)
# Returns how many entries were trimmed (0 for a stream that does not exist).
TRIM_LUA = (
    NOW_MS_LUA + TRIM_LUA_FUNCTION + "return trim(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))\n"
)

# (stream key, max events, max age in ms) of one partition
Target = tuple[str, int, int]


def targets() -> list[Target]:
    """Every partition that has a retention limit, with its limits."""
    rows = EventType.objects.values_list(
        "stream_id", "partition_count", "retention_max_events", "retention_time_ms"
    )
    out = []
    for stream, count, max_events, max_age in rows:
        limits = (max(max_events or 0, 0), max(max_age or 0, 0))
        if limits != (0, 0):
            out += [(log_key(stream, p), *limits) for p in range(count)]
    return out


def trim_all(client: redis.Redis) -> int:
    """Trim every partition to its event type's retention; returns how many entries went.

    One pipelined round trip per `BATCH` partitions. Idempotent: a second run right after
    finds nothing more to trim.
    """
    sha = client.script_load(TRIM_LUA)
    trimmed = 0
    for batch in _batches(targets(), BATCH):
        pipe = client.pipeline(transaction=False)
        for key, max_events, max_age in batch:
            pipe.evalsha(sha, 1, key, max_events, max_age)
        trimmed += sum(int(n) for n in pipe.execute())
    if trimmed:
        logger.info("retention trimmed %s entries", trimmed)
    return trimmed


def _batches(items: Sequence[Target], size: int) -> Iterator[Sequence[Target]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
