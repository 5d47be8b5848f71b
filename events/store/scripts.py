"""The one way Streamsite runs Lua: a `Script` is a module constant (a comment above it says
its KEYS, ARGV and what it returns), run by EVALSHA; a Redis that does not know it yet (a restart, a
failover, SCRIPT FLUSH) answers NOSCRIPT, and the script is loaded and run again. Nothing
is registered per call or per object, and a pipeline of scripts sends no SCRIPT EXISTS
first (redis-py's registered scripts do: one more round trip per pipeline).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import NoScriptError

Call = tuple[Sequence[str], Sequence[Any]]  # (keys, args) of one run


class Script:
    """A Lua script: fragments (local functions it uses) and a body, joined once."""

    def __init__(self, *parts: str) -> None:
        self.source = "".join(parts)
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    async def __call__(self, client: AsyncRedis, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run it once; its reply."""
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.script_load(self.source)
            return await client.evalsha(self.sha, len(keys), *keys, *args)

    def run_sync(self, client: redis.Redis, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run it once on a synchronous client; its reply."""
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(self.source)
            return client.evalsha(self.sha, len(keys), *keys, *args)


async def run_all(
    client: AsyncRedis, runs: Sequence[tuple[Script, Sequence[str], Sequence[Any]]]
) -> list[Any]:
    """Run scripts in one pipelined round trip (two when Redis had to load some first);
    each run's reply, or the exception it raised, in order.
    """
    replies = await _pipeline(client, runs)
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if missing:
        # NOSCRIPT means the script did not run: load each once, run exactly those again.
        for script in {runs[i][0].sha: runs[i][0] for i in missing}.values():
            await client.script_load(script.source)
        again = await _pipeline(client, [runs[i] for i in missing])
        for i, reply in zip(missing, again, strict=True):
            replies[i] = reply
    return replies


async def _pipeline(
    client: AsyncRedis, runs: Sequence[tuple[Script, Sequence[str], Sequence[Any]]]
) -> list[Any]:
    async with client.pipeline(transaction=False) as pipe:
        for script, keys, args in runs:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
    return replies


def run_all_sync(
    client: redis.Redis, runs: Sequence[tuple[Script, Sequence[str], Sequence[Any]]]
) -> list[Any]:
    """`run_all` on a synchronous client."""
    replies = _pipeline_sync(client, runs)
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if missing:
        for script in {runs[i][0].sha: runs[i][0] for i in missing}.values():
            client.script_load(script.source)
        again = _pipeline_sync(client, [runs[i] for i in missing])
        for i, reply in zip(missing, again, strict=True):
            replies[i] = reply
    return replies


def _pipeline_sync(
    client: redis.Redis, runs: Sequence[tuple[Script, Sequence[str], Sequence[Any]]]
) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for script, keys, args in runs:
        pipe.evalsha(script.sha, len(keys), *keys, *args)
    replies: list[Any] = pipe.execute(raise_on_error=False)
    return replies


def raise_first(replies: Sequence[Any]) -> list[Any]:
    """The replies of `run_all`, raising the first error among them."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return list(replies)
