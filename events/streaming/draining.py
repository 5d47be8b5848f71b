"""The drain of a server process before it stops (docs/architecture.md#deploys-and-faults).

Daphne cancels every application instance at once on SIGTERM (measured: the client sees
a cut transfer, and partitions wait for their leases to lapse). So the server is drained
first, on SIGUSR1: readiness turns 503, new streams get 503, every stream session closes
with `shutdown` and hands its partitions over at once (readers close too), and once every
stream has written its last bytes the process sends itself SIGTERM. `manage.py up` drains
its servers this way; in production, send SIGUSR1 first (the Kubernetes preStop hook in
deploy/k8s does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator

from events.streaming import local
from events.streaming.local import LocalSession

logger = logging.getLogger(__name__)

DRAIN_SIGNAL = signal.SIGUSR1
DRAIN_TIMEOUT = 10.0  # seconds the sessions get to close before the process stops anyway


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
    """Around a stream's writing: the drain stops the process only once every stream has
    written its last bytes (a session that has left may still have its close to send).
    """
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    _sending.add(done)
    try:
        yield
    finally:
        _sending.discard(done)
        done.set_result(None)


def install() -> None:
    """Drain on SIGUSR1; called by the ASGI module (a no-op outside the main thread, where
    Python allows no signal handler, e.g. when a test imports the module).
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(DRAIN_SIGNAL, lambda signum, frame: _on_signal())


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
    sessions = local.every()
    for session in sessions:
        session.shutdown()
    waits = [asyncio.ensure_future(s.closed()) for s in sessions] + list(_sending)
    if waits:
        # The sessions leave, then their streams send their last batches and closes.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_TIMEOUT
        _, pending = await asyncio.wait(waits, timeout=DRAIN_TIMEOUT)
        streams = list(_sending)
        if streams and not pending:
            _, pending = await asyncio.wait(streams, timeout=max(0.0, deadline - loop.time()))
        if pending:
            logger.warning("%d streams did not close within %.0f s", len(pending), DRAIN_TIMEOUT)
    logger.info("drained; stopping")
    os.kill(os.getpid(), signal.SIGTERM)
