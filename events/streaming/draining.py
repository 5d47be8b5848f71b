"""The drain of a server process before it stops (docs/architecture.md#deploys-and-faults).

Daphne alone cancels every application instance at once on SIGTERM (measured: the client
sees a cut transfer, and partitions wait for their leases to lapse). So SIGTERM (and
SIGUSR1) drains instead: the listener stays open, readiness turns 503, new streams are
turned away (NDJSON 503, SSE 200 with `event: close`, WebSocket 4503), every session closes
with `shutdown` after sending what it holds, accepts commits of what it sent for
DRAIN_COMMIT_GRACE_SECONDS and then hands its partitions over at once; readers close too.
Once every stream has written its last bytes, or DRAIN_SECONDS have passed, the process
stops (exit 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator

from django.conf import settings

from events.streaming import local
from events.streaming.local import LocalSession

logger = logging.getLogger(__name__)

DRAIN_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


_draining = False


def is_draining() -> bool:
    """True once this process started its drain: it takes no new streams."""
    return _draining


def track(session: LocalSession) -> None:
    """A session of this process begins: it closes with `shutdown` when the process drains
    (at once, if it is draining already).
    """
    local.add(session)
    if _draining:
        session.shutdown()


def untrack(session: LocalSession) -> None:
    local.discard(session)


_sending: set[asyncio.Future[None]] = set()


@contextlib.contextmanager
def sending() -> Iterator[None]:
    """Around a stream's writing, or a request's handling: the drain stops the process
    only once every stream has written its last bytes (a session that has left may still
    have its close to send) and every request under way was answered.
    """
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    _sending.add(done)
    try:
        yield
    finally:
        _sending.discard(done)
        done.set_result(None)


def install() -> None:
    """Drain on SIGTERM (what Kubernetes and `docker stop` send) and on SIGUSR1; called by
    the ASGI module (a no-op outside the main thread, where Python allows no signal handler,
    e.g. when a test imports the module).

    Under Daphne, Twisted installs its own SIGTERM handler (stop at once) when its reactor
    starts: ours is installed after it, and the reactor is stopped once the drain is done.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in DRAIN_SIGNALS:
        signal.signal(signum, lambda signum, frame: _on_signal())
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is not None:
        reactor.callWhenRunning(  # type: ignore[attr-defined]
            lambda: signal.signal(signal.SIGTERM, lambda signum, frame: _on_signal())
        )


def _on_signal() -> None:
    global _draining
    if _draining:
        return
    _draining = True
    logger.info("draining %d stream sessions", len(local.every()))
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = asyncio.get_event_loop_policy().get_event_loop()
    loop.call_soon_threadsafe(lambda: loop.create_task(_drain()))


async def _drain() -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.DRAIN_SECONDS
    sessions = local.every()
    for session in sessions:
        session.shutdown()
    # The sessions leave (after their grace for commits); then every stream has sent its
    # last batch and close, and every request under way (a late commit) is answered.
    pending = [asyncio.ensure_future(s.closed()) for s in sessions]
    while pending or _sending:
        left = deadline - loop.time()
        if left <= 0:
            logger.warning(
                "%d streams or requests did not end within %d s; stopping anyway",
                len(pending) + len(_sending),
                settings.DRAIN_SECONDS,
            )
            break
        _, waiting = await asyncio.wait([*pending, *_sending], timeout=left)
        pending = [f for f in pending if f in waiting]
    logger.info("drained; stopping")
    _stop()


def _stop() -> None:
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is not None and getattr(reactor, "running", False):
        reactor.stop()  # Daphne ends what is left, and the process exits 0
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
