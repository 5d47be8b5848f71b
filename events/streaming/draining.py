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
import logging
import os
import signal
import sys
import threading

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


class _Sending:
    """Counts the streams writing and the requests under way, with no object of their own:
    a process holds tens of thousands of readers. The drain waits for `idle()`.
    """

    def __init__(self) -> None:
        self.count = 0
        self._idle: asyncio.Future[None] | None = None

    def __enter__(self) -> None:
        self.count += 1

    def __exit__(self, *exc: object) -> None:
        self.count -= 1
        idle = self._idle
        if not self.count and idle is not None and not idle.done():
            idle.set_result(None)

    def idle(self) -> asyncio.Future[None]:
        """Done once nothing is writing or under way (at once, if nothing is)."""
        if self._idle is None or self._idle.done():
            self._idle = asyncio.get_running_loop().create_future()
        if not self.count:
            self._idle.set_result(None)
        return self._idle


_sending = _Sending()


def sending() -> _Sending:
    """Around a stream's writing, or a request's handling: the drain stops the process
    only once every stream has written its last bytes (a session that has left may still
    have its close to send) and every request under way was answered.
    """
    return _sending


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
    while pending or _sending.count:
        left = deadline - loop.time()
        if left <= 0:
            logger.warning(
                "%d streams or requests did not end within %d s; stopping anyway",
                len(pending) + _sending.count,
                settings.DRAIN_SECONDS,
            )
            break
        idle = [_sending.idle()] if _sending.count else []
        _, waiting = await asyncio.wait([*pending, *idle], timeout=left)
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
