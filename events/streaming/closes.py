"""Each session's end, recorded for the dashboard's "recent closes" (events/store/closes.py):
`recorded` wraps a session's `run`, so the record is written once per session, after it
has left, and never on the path of a batch.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import redis

from events.store import closes

logger = logging.getLogger(__name__)

DISCONNECTED = "disconnected"  # the client went away (the run was cancelled)

S = TypeVar("S")


def recorded(
    run: Callable[[S, Any], Coroutine[Any, Any, str]],
) -> Callable[[S, Any], Coroutine[Any, Any, str]]:
    """Wrap `run(session, send) -> close reason` to record how each session ended: its
    reason, `disconnected` when cancelled, `error: <type>` when it raised.
    """

    @functools.wraps(run)
    async def wrapper(session: Any, send: Any) -> str:
        reason = DISCONNECTED
        try:
            reason = await run(session, send)
            return reason
        except Exception as error:
            reason = f"error: {type(error).__name__}"
            raise
        finally:
            close: closes.Close = {
                "at": int(time.time() * 1000),
                "session": session.id,
                "reason": reason,
            }
            await asyncio.shield(_record(session, close))

    return wrapper


async def _record(session: Any, close: closes.Close) -> None:
    try:
        await closes.record(session._client, session.plan.subscription, close)
    except (redis.RedisError, OSError) as error:  # a record for people, not for delivery
        logger.warning("session %s: its close was not recorded: %s", close["session"], error)
