"""A task that keeps one blocking Redis read going, on a connection of its own, for as
long as there is something to read: the base of the process's hubs (`events/store/hub.py`
for sessions, `events/store/tails.py` for readers). When what to read changes, CLIENT
UNBLOCK cuts the current read short; after an error the task reads again on a new
connection, and a subclass decides what the error means for its followers.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis
import redis.asyncio as aioredis

from events.store.connections import CLIENT_OPTIONS, async_redis_client

logger = logging.getLogger(__name__)

BLOCK_MS = 1_000  # a read returns at least this often, to pick up a changed watch list
RETRY_SECONDS = 0.5  # after an error, before reading again


class BlockingReads:
    name = "blocking reads"  # in log lines and the task's name

    def __init__(self, url: str) -> None:
        self._url = url
        self._reader: asyncio.Task[None] | None = None
        self._blocked_client: int | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- what a subclass provides -------------------------------------------------------

    def _wanted(self) -> bool:
        """Whether there is anything to read: the task ends when there is not."""
        raise NotImplementedError

    async def _read_once(self, connection: aioredis.Redis) -> None:
        """One blocking read (at most BLOCK_MS) and what follows from it."""
        raise NotImplementedError

    async def _after_error(self) -> None:
        """After an error and the pause that follows it, before reading again."""

    # -- the task -----------------------------------------------------------------------

    def _start_or_interrupt(self, changed: bool) -> None:
        """Read from now on; if a read is under way and what to read `changed`, cut it
        short so that the next one reads the new list.
        """
        if self._reader is None:
            self._reader = asyncio.create_task(self._read_forever(), name=self.name)
        elif changed:
            self._interrupt()

    async def _blocking_id(self, connection: aioredis.Redis) -> None:
        """Learn the connection's client id once, for CLIENT UNBLOCK."""
        if self._blocked_client is None:
            self._blocked_client = int(await connection.client_id())

    def _interrupt(self) -> None:
        blocked = self._blocked_client
        if blocked is not None:
            task = asyncio.create_task(self._unblock(blocked))
            self._tasks.add(task)  # keep a reference until it is done
            task.add_done_callback(self._tasks.discard)

    async def _unblock(self, client_id: int) -> None:
        try:
            await async_redis_client().client_unblock(client_id)
        except redis.RedisError as error:  # the read ends within BLOCK_MS anyway
            logger.debug("could not unblock the %s: %s", self.name, error)

    async def _read_forever(self) -> None:
        # A socket timeout beyond the block time: a half-open connection ends in an error
        # and a new connection, instead of a read that never returns.
        timeout = BLOCK_MS / 1000 + CLIENT_OPTIONS["socket_timeout"]
        connection = aioredis.Redis.from_url(
            self._url,
            single_connection_client=True,
            **{**CLIENT_OPTIONS, "socket_timeout": timeout},
        )
        try:
            while self._wanted():
                try:
                    await self._read_once(connection)
                except (redis.RedisError, OSError) as error:
                    self._blocked_client = None
                    logger.warning(
                        "%s: %s; reading again in %.1f s", self.name, error, RETRY_SECONDS
                    )
                    await self._after_error()
                except Exception:  # a bug must not silence every follower of the process
                    self._blocked_client = None
                    logger.exception("%s failed; reading again in %.1f s", self.name, RETRY_SECONDS)
                    await asyncio.sleep(RETRY_SECONDS)
        finally:
            # Before any await: a new follower from now on starts a new task.
            self._reader = None
            self._blocked_client = None
            await connection.aclose()
