"""Writing committed cursors to the database: one thread and one connection per server
process, and commits that arrive together are stored together (one transaction per
subscription).

A commit is answered only once its cursors are stored, as before; but the write no longer
pays for a thread and a new database connection of its own (Django's ASGI handler gives
each request a fresh thread, and the connection closes when the request ends: measured by
`python -m bench consume`, that made a commit cost ~7 ms of server CPU).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from django.db import DatabaseError, connection

from events.catalog import committed
from events.core.offsets import Cursor, parse_offset
from events.store.connections import loop_local

logger = logging.getLogger(__name__)

Key = tuple[str, str, int]  # (subscription, event type, partition)

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cursor-writer")


class CursorWriter:
    """Committed cursors waiting for the database, and the one task that writes them."""

    def __init__(self) -> None:
        self._pending: dict[Key, str] = {}
        self._waiting: list[asyncio.Future[None]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def write(self, subscription: str, cursors: Iterable[Cursor]) -> None:
        """Store the cursors (each newer than the stored one: Redis committed them in
        order); returns once they are in the database.
        """
        items = list(cursors)
        if not items:
            return
        for cursor in items:
            key = (subscription, cursor.event_type, cursor.partition)
            held = self._pending.get(key)
            if held is None or parse_offset(cursor.offset) > parse_offset(held):
                self._pending[key] = cursor.offset
        done = asyncio.get_running_loop().create_future()
        self._waiting.append(done)
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending, {}
                waiting, self._waiting = self._waiting, []
                try:
                    await loop.run_in_executor(_executor, _store, batch)
                except Exception as error:  # each waiting commit answers with it
                    for future in waiting:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for future in waiting:
                    if not future.done():
                        future.set_result(None)
        finally:
            self._flushing = None


# The running event loop's writer.
writer = loop_local(lambda: CursorWriter())


def _store(batch: dict[Key, str]) -> None:
    """In the writer's thread: one transaction per subscription; a broken connection is
    reopened once.
    """
    by_subscription: dict[str, list[Cursor]] = {}
    for (subscription, event_type, partition), offset in batch.items():
        by_subscription.setdefault(subscription, []).append(Cursor(event_type, partition, offset))
    for attempt in (1, 2):
        try:
            committed.record_all(by_subscription)
            return
        except DatabaseError:
            if attempt == 2:
                raise
            logger.warning("cursor writer: database error; reconnecting once", exc_info=True)
            connection.close()
