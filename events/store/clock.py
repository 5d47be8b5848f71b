"""The Redis server's clock: every server and worker agrees on it, whatever their own say."""

from __future__ import annotations

import redis


def now_ms(client: redis.Redis) -> int:
    """The Redis server's time, in ms (Lua scripts read it themselves: NOW_MS_LUA)."""
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000
