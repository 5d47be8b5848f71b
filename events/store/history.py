"""An hour of history for the dashboard: samples of each event type's published count and
of each subscription's unconsumed events, kept in Redis so that a page opened now shows the
last hour.

    ss:stats:published:<store id>   ZSET "<at>:<count>" scored by at (ms, Redis's clock)
    ss:stats:lag-history:<sub>      ZSET JSON {"at", "unconsumed": {"<type>/<p>": n | null}}

Samples are taken when a dashboard polls (at most one a second, however many poll: a short
gate key) and by the `stats` job, so history goes on while nobody watches. Each write drops
samples older than `KEEP_MS`; a key nobody writes expires.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import orjson
import redis

from events.store.clock import now_ms
from events.store.keys import lag_history_key, log_key, published_history_key, sampled_key
from events.store.metrics import STREAM_COUNTS
from events.store.scripts import Script, run_all_sync

KEEP_MS = 3_600_000  # an hour of samples
EXPIRE_SECONDS = 2 * 3600  # a key nobody samples any more (a deleted type) goes away
GATE_MS = 900  # at most one sample per gate and second (pollers ask every second)

Sample = tuple[int, int]  # (at ms, events published so far)


class LagSample(TypedDict):
    at: int
    unconsumed: dict[str, int | None]  # "<event type>/<partition>" -> events after the cursor


def published_counts(
    client: redis.Redis, event_types: Sequence[tuple[str, int]]
) -> list[tuple[int, int]]:
    """(events ever published, entries kept now) of each (store id, partition count),
    summed over its partitions, in one round trip. Published is Redis's entries-added
    (before Redis 7, which does not count them, the current length).
    """
    runs: list[tuple[Script, Sequence[str], Sequence[Any]]] = [
        (STREAM_COUNTS, [log_key(store_id, p)], [])
        for store_id, count in event_types
        for p in range(count)
    ]
    replies = iter(run_all_sync(client, runs))
    totals = []
    for _, count in event_types:
        published = kept = 0
        for _ in range(count):
            reply = next(replies)
            if isinstance(reply, Exception):
                raise reply
            added, length = (int(n) for n in reply)
            published += added if added >= 0 else length
            kept += length
        totals.append((published, kept))
    return totals


def take_gate(client: redis.Redis, subscription: str | None = None) -> bool:
    """True for the one caller per `GATE_MS` that should take the next sample."""
    return bool(client.set(sampled_key(subscription), 1, nx=True, px=GATE_MS))


def record_published(
    client: redis.Redis, store_ids: Sequence[str], published: Sequence[int]
) -> int:
    """Add a sample of each event type's published count (`published_counts`); returns
    its time (ms, Redis's clock).
    """
    at = now_ms(client)
    pipe = client.pipeline(transaction=False)
    for store_id, count in zip(store_ids, published, strict=True):
        key = published_history_key(store_id)
        pipe.zadd(key, {f"{at}:{count}": at})
        pipe.zremrangebyscore(key, "-inf", at - KEEP_MS)
        pipe.expire(key, EXPIRE_SECONDS)
    pipe.execute()
    return at


def sample_published(client: redis.Redis, event_types: Sequence[tuple[str, int]]) -> int:
    """Measure and record every (store id, partition count)'s published count; its time."""
    counts = published_counts(client, event_types)
    return record_published(
        client, [store_id for store_id, _ in event_types], [n for n, _ in counts]
    )


def published_since(
    client: redis.Redis, store_ids: Sequence[str], since_ms: int
) -> list[list[Sample]]:
    """Each event type's samples taken at or after `since_ms`, oldest first."""
    pipe = client.pipeline(transaction=False)
    for store_id in store_ids:
        pipe.zrangebyscore(published_history_key(store_id), since_ms, "+inf")
    out = []
    for members in pipe.execute():
        samples = []
        for member in members:
            at, _, count = member.decode().partition(":")
            samples.append((int(at), int(count)))
        out.append(samples)
    return out


def sample_lag(
    client: redis.Redis, subscription: str, unconsumed: Mapping[str, int | None]
) -> LagSample:
    """Add a sample of a subscription's unconsumed events per partition."""
    at = now_ms(client)
    sample: LagSample = {"at": at, "unconsumed": dict(unconsumed)}
    key = lag_history_key(subscription)
    pipe = client.pipeline(transaction=False)
    pipe.zadd(key, {orjson.dumps(sample): at})
    pipe.zremrangebyscore(key, "-inf", at - KEEP_MS)
    pipe.expire(key, EXPIRE_SECONDS)
    pipe.execute()
    return sample


def lag_since(client: redis.Redis, subscription: str, since_ms: int) -> list[LagSample]:
    """A subscription's lag samples taken after `since_ms`, oldest first."""
    members: Any = client.zrangebyscore(lag_history_key(subscription), f"({since_ms}", "+inf")
    return [orjson.loads(member) for member in members]
