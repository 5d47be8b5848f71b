"""The sessions this process serves, by id. The drain closes each of them; a client's
commit made in this process tells its own session directly instead of through Redis (the
session's own commits of filtered tails still come back through its control channel).

Held weakly: a session that ends and is dropped leaves the registry with it.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Protocol


class LocalSession(Protocol):
    id: str

    def shutdown(self) -> None: ...

    async def closed(self) -> None: ...

    def on_commit(self, store_id: str, partition: int, offset: str) -> None: ...


_by_id: weakref.WeakValueDictionary[str, LocalSession] = weakref.WeakValueDictionary()
_loops: weakref.WeakKeyDictionary[LocalSession, asyncio.AbstractEventLoop] = (
    weakref.WeakKeyDictionary()
)


def add(session: LocalSession) -> None:
    """Register a session of the running event loop."""
    _by_id[session.id] = session
    _loops[session] = asyncio.get_running_loop()


def discard(session: LocalSession) -> None:
    if _by_id.get(session.id) is session:
        del _by_id[session.id]
    _loops.pop(session, None)


def every() -> list[LocalSession]:
    return list(_by_id.values())


def find(session_id: str) -> LocalSession | None:
    """The session with this id if it runs here, on the running event loop (a session is
    told directly only on its own loop; tests run several loops in one process).
    """
    session = _by_id.get(session_id)
    if session is None or _loops.get(session) is not asyncio.get_running_loop():
        return None
    return session
