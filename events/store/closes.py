"""How a subscription's last sessions ended, for the dashboard: a capped list per
subscription, written once as each session ends (events/streaming/closes.py).

    ss:{sub:<id>}:closes   list of JSON {"at" (ms), "session", "reason"}, newest first
"""

from __future__ import annotations

from typing import Any, TypedDict

import orjson
import redis
from redis.asyncio import Redis as AsyncRedis

from events.store.keys import closes_key

KEEP = 50  # closes kept per subscription
EXPIRE_SECONDS = 7 * 24 * 3600  # a subscription nobody streams any more forgets them


class Close(TypedDict):
    at: int  # ms, the server's wall clock
    session: str
    reason: str  # the stream's close reason, or "disconnected" (its client left)


async def record(client: AsyncRedis, subscription: str, close: Close) -> None:
    """Add a close, keeping the newest `KEEP`: one round trip."""
    key = closes_key(subscription)
    async with client.pipeline(transaction=False) as pipe:
        pipe.lpush(key, orjson.dumps(close))
        pipe.ltrim(key, 0, KEEP - 1)
        pipe.expire(key, EXPIRE_SECONDS)
        await pipe.execute()


def recent(client: redis.Redis, subscription: str, count: int = KEEP) -> list[Close]:
    """The newest `count` closes, newest first."""
    raw: Any = client.lrange(closes_key(subscription), 0, count - 1)
    return [orjson.loads(item) for item in raw]
