"""Choosing an event's partition: pure functions, no I/O.

`random` partitioning hashes the eid when there is one, so that a retried event lands on
the partition of its first attempt and is found there by the eid de-duplication.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson


class PartitioningError(ValueError):
    """The event cannot be placed: the message says why, for the producer."""


def _stable_hash(data: bytes) -> int:
    return zlib.crc32(data)


def field_value(event: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path such as `order.customer_id`; PartitioningError if absent."""
    node: Any = event
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise PartitioningError(f"the partition key field {path!r} is missing")
        node = node[part]
    return node


def choose_partition(
    event: Mapping[str, Any],
    *,
    strategy: str,
    partition_count: int,
    key_fields: Sequence[str] = (),
    eid: str | None = None,
    rng: random.Random | None = None,
) -> int:
    """The partition, from 0 to `partition_count` - 1, that `event` belongs to."""
    if strategy == "hash":
        key = orjson.dumps([field_value(event, field) for field in key_fields])
        return _stable_hash(key) % partition_count
    if strategy == "user_defined":
        metadata = event.get("metadata")
        given = metadata.get("partition") if isinstance(metadata, Mapping) else None
        if given is None:
            raise PartitioningError("metadata.partition is required by user_defined partitioning")
        try:
            partition = int(given)
        except (TypeError, ValueError):
            raise PartitioningError(f"metadata.partition {given!r} is not a partition") from None
        if str(partition) != str(given) or not 0 <= partition < partition_count:
            raise PartitioningError(
                f"metadata.partition {given!r} is not one of 0..{partition_count - 1}"
            )
        return partition
    if eid:
        return _stable_hash(eid.encode()) % partition_count
    return (rng or random).randrange(partition_count)
