"""One Hub per event loop (so per server process): it tells local stream sessions when
their partitions have new entries and passes them their subscription's control messages,
so that Redis load grows with partitions, not with connections
(docs/architecture.md#performance).

New entries: one blocking XREAD over every partition some local session watches, on a
connection of its own; when the set of partitions changes, CLIENT UNBLOCK cuts the current
read short. The read continues from the last id it saw, never from `$`
(docs/architecture.md#redis-layout). Control messages: one PSUBSCRIBE to every
subscription's channel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings

from events.store.blocking import BLOCK_MS, RETRY_SECONDS, BlockingReads
from events.store.connections import async_redis_client, loop_local
from events.store.keys import CONTROL_PATTERN

logger = logging.getLogger(__name__)

SUBSCRIBE_TIMEOUT = 5.0  # seconds a new listener waits for the control subscription

Wake = Callable[[], None]
OnMessage = Callable[[str], None]


class Hub(BlockingReads):
    name = "stream hub"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._watchers: dict[str, set[Wake]] = {}
        self._last: dict[str, str] = {}
        self._listeners: dict[str, set[OnMessage]] = {}
        self._control: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    # -- new entries ---------------------------------------------------------------------

    def watch(self, key: str, wake: Wake) -> None:
        """Call `wake()` whenever the partition log at `key` gets entries, until `unwatch`."""
        new = key not in self._watchers
        self._watchers.setdefault(key, set()).add(wake)
        self._start_or_interrupt(changed=new)

    def unwatch(self, key: str, wake: Wake) -> None:
        wakes = self._watchers.get(key)
        if wakes is not None:
            wakes.discard(wake)
            if not wakes:
                del self._watchers[key]
                self._last.pop(key, None)

    def _wanted(self) -> bool:
        return bool(self._watchers)

    async def _after_error(self) -> None:
        self._wake(list(self._watchers))  # sessions read on their own meanwhile
        await asyncio.sleep(RETRY_SECONDS)

    async def _read_once(self, connection: aioredis.Redis) -> None:
        keys = list(self._watchers)
        unknown = [k for k in keys if k not in self._last]
        if unknown:
            async with connection.pipeline(transaction=False) as pipe:
                for key in unknown:
                    pipe.xrevrange(key, count=1)
                newest = await pipe.execute()
            for key, entries in zip(unknown, newest, strict=True):
                self._last[key] = entries[0][0].decode() if entries else "0-0"
            # Entries that came after a watcher's own last read and before now would
            # wake no one: wake it once, and it reads them itself.
            self._wake(unknown)
        if set(self._watchers) != set(keys):
            return  # the watch list changed meanwhile: read again with the new one
        await self._blocking_id(connection)
        streams: dict[Any, Any] = {k: self._last[k] for k in keys if k in self._last}
        reply: Any = await connection.xread(streams, count=1, block=BLOCK_MS)
        if not reply:
            return
        woken = {key.decode(): entries[-1][0].decode() for key, entries in reply}
        for key, seen in woken.items():
            if key in self._watchers:
                self._last[key] = seen
        self._wake(woken)  # at once: the sessions read while the hub looks further
        # Skip to the newest entry, so that a burst is not read here entry by entry, and
        # wake again for a key that got entries meanwhile (its sessions may have read
        # before they came).
        async with connection.pipeline(transaction=False) as pipe:
            for key in woken:
                pipe.xrevrange(key, count=1)
            newest = await pipe.execute()
        later = {}
        for (key, seen), entries in zip(woken.items(), newest, strict=True):
            if entries and entries[0][0].decode() != seen and key in self._watchers:
                later[key] = self._last[key] = entries[0][0].decode()
        self._wake(later)

    def _wake(self, keys: Iterable[str]) -> None:
        for key in keys:
            for wake in list(self._watchers.get(key, ())):
                wake()

    # -- control messages ----------------------------------------------------------------

    async def listen(self, channel: str, on_message: OnMessage) -> None:
        """Call `on_message(text)` for every message on `channel`, until `unlisten`;
        returns once messages published from now on are sure to arrive.
        """
        self._listeners.setdefault(channel, set()).add(on_message)
        if self._control is None or self._control.done():
            self._control = asyncio.create_task(self._listen_forever(), name="control-hub")
        try:
            # Not asyncio.wait_for: on Python 3.11 it can swallow a cancellation (CPython
            # gh-86296), and a request cancelled while opening would carry on.
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT):
                await self._subscribed.wait()
        except TimeoutError:
            raise redis.ConnectionError("could not subscribe to the control channels") from None

    def unlisten(self, channel: str, on_message: OnMessage) -> None:
        listeners = self._listeners.get(channel)
        if listeners is not None:
            listeners.discard(on_message)
            if not listeners:
                del self._listeners[channel]

    async def _listen_forever(self) -> None:
        while True:
            pubsub = async_redis_client().pubsub()
            try:
                await pubsub.psubscribe(CONTROL_PATTERN)
                async for message in pubsub.listen():
                    if message.get("type") == "psubscribe":
                        self._subscribed.set()
                    self._dispatch(message)
            except redis.RedisError as error:
                self._subscribed.clear()
                logger.warning("control hub: %s; subscribing again in %.1f s", error, RETRY_SECONDS)
                # Messages may have been missed: every listener re-checks its state.
                for listeners in list(self._listeners.values()):
                    for on_message in list(listeners):
                        on_message("resync")
                await asyncio.sleep(RETRY_SECONDS)
            finally:
                await pubsub.aclose()

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("type") != "pmessage":
            return
        channel = message["channel"].decode()
        text = message["data"].decode()
        for on_message in list(self._listeners.get(channel, ())):
            on_message(text)


# The running event loop's hub.
hub = loop_local(lambda: Hub(settings.REDIS_URL))
