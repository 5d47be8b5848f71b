"""What a /metrics scrape reads of the partitions: their counters and groups, without the
events (events/api/metrics.py renders them).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from events.store.keys import log_key, skipped_key
from events.store.scripts import Script, run_all_sync

PARTITIONS_PER_ROUND_TRIP = 256  # partitions read per pipelined round trip


# A partition's counters without its first and last entries, which XINFO STREAM also
# returns (up to two whole events per partition and scrape).
# KEYS[1] the partition's log. Returns {entries ever added (-1 before Redis 7, which
# does not count them), current length}; {0, 0} for a log never written.
STREAM_COUNTS = Script("""
local ok, info = pcall(redis.call, 'XINFO', 'STREAM', KEYS[1])
if not ok then return {0, 0} end
local added, length = -1, 0
for i = 1, #info, 2 do
  if info[i] == 'entries-added' then added = info[i + 1]
  elseif info[i] == 'length' then length = info[i + 1] end
end
return {added, length}
""")


@dataclass(frozen=True)
class PartitionRead:
    """What a scrape read of one partition."""

    event_type: str
    partition: int
    entries_added: int | None  # None before Redis 7
    length: int
    groups: list[dict[str, Any]]  # XINFO GROUPS; one group per subscription, by its id


def read_partitions(
    client: redis.Redis, partitions: Sequence[tuple[str, str, int]]
) -> Iterator[PartitionRead]:
    """Counters and groups of each (event type, store id, partition), one round trip per
    `PARTITIONS_PER_ROUND_TRIP` partitions (two).
    """
    for start in range(0, len(partitions), PARTITIONS_PER_ROUND_TRIP):
        batch = partitions[start : start + PARTITIONS_PER_ROUND_TRIP]
        keys = [log_key(store_id, p) for _, store_id, p in batch]
        all_counts = run_all_sync(client, [(STREAM_COUNTS, [key], []) for key in keys])
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.xinfo_groups(key)
        all_groups = pipe.execute(raise_on_error=False)
        for (name, _, p), counts, groups in zip(batch, all_counts, all_groups, strict=True):
            if isinstance(counts, Exception):
                raise counts
            added, length = (int(n) for n in counts)
            yield PartitionRead(
                name,
                p,
                None if added < 0 else added,
                length,
                [] if isinstance(groups, Exception) else list(groups),  # no log: no groups
            )


def read_skipped(client: redis.Redis, targets: Sequence[tuple[str, int, str]]) -> list[int]:
    """How many events each (store id, partition, subscription) skipped (its unprocessable-
    event policy "skip"), in one round trip.
    """
    pipe = client.pipeline(transaction=False)  # GETs, not an MGET: the keys span slots
    for target in targets:
        pipe.get(skipped_key(*target))
    return [int(count or 0) for count in pipe.execute()]
