"""Child processes that `manage.py up` and the tests start, and stopping them in order."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the parent dies, even by SIGKILL (Linux)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(args: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
    """Start a child in its own session (a terminal's Ctrl-C reaches only the parent, which
    then stops children in order) that also ends when its parent dies.
    """
    return subprocess.Popen(
        list(args),
        start_new_session=True,
        preexec_fn=_die_with_parent,
        stdin=subprocess.DEVNULL,
        **kwargs,
    )  # type: ignore[call-overload]


def stop(process: subprocess.Popen[bytes], name: str, timeout: float = 15.0) -> int | None:
    """SIGTERM, wait up to `timeout`, then SIGKILL. Returns the exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop within %.0f s; killing it", name, timeout)
            process.kill()
            process.wait()
    return process.returncode


def drain(process: subprocess.Popen[bytes], name: str, timeout: float = 30.0) -> int | None:
    """Ask a server to drain (SIGTERM: it closes its streams and stops by itself, within its
    DRAIN_SECONDS); kill it if it has not within `timeout`.
    """
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("%s did not drain within %.0f s", name, timeout)
    return stop(process, name)


class PortBusy(OSError):
    """Something already listens on the address asked for."""


def listen(bind: str, port: int, count: int = 1, backlog: int = 1024) -> list[socket.socket]:
    """`count` listening sockets on one port, for as many server processes to inherit.

    With SO_REUSEPORT the kernel spreads new connections over the sockets by address hash;
    one shared socket would let whichever process wakes first accept a whole burst of
    keep-alive connections and do all the work. PortBusy when the port is taken.
    """
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    # SO_REUSEADDR (not SO_REUSEPORT): a listener still makes this fail, but connections of
    # a server that just stopped, left in TIME_WAIT, do not.
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        # Without SO_REUSEPORT, so that a server already on the port (even one of ours
        # with SO_REUSEPORT) makes this fail instead of quietly sharing its traffic.
        probe.bind((bind, port))
        port = probe.getsockname()[1]
    except OSError as error:
        raise PortBusy(
            f"Port {port} on {bind} is busy ({error.strerror}); stop what uses it "
            "or choose another with --port."
        ) from None
    finally:
        probe.close()
    sockets = []
    for _ in range(count):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((bind, port))
        sock.listen(backlog)
        sock.set_inheritable(True)
        sockets.append(sock)
    return sockets


def server_command(fd: int, application: str = "streamsite.asgi:application") -> list[str]:
    """Daphne serving `application` on an inherited listening socket (see `listen`)."""
    return [sys.executable, "-m", "daphne", "--fd", str(fd), "--proxy-headers", application]


def default_server_count() -> int:
    """One server process per CPU: each is a single-threaded event loop."""
    return os.cpu_count() or 1


T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], *, timeout: float, message: str, interval: float = 0.02
) -> T:
    """Poll `condition` until it returns something truthy; TimeoutError at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for tests and benchmarks)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
