"""Child processes that `manage.py up` and the tests start, and stopping them in order."""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
from collections.abc import Sequence

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
