"""The peer of `bench fanout`: django-eventstream (bench/peers/eventstream/, a minimal Django
project) in a virtualenv of its own, served by one Daphne process on loopback, with its Redis
option on the benchmark's redis-server (another db number).

The virtualenv (var/bench-peer-venv) is made on first use from the peer's
requirements.txt, and again whenever that file changes; never in the project's venv.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from bench.common import ROOT, BenchError, stop_process
from streamsite.processes import listen, wait_until

logger = logging.getLogger(__name__)

PEER_DIR = ROOT / "bench" / "peers" / "eventstream"
REQUIREMENTS = PEER_DIR / "requirements.txt"
VENV = ROOT / "var" / "bench-peer-venv"
STAMP = VENV / ".requirements-sha256"  # the requirements the venv was made from
REDIS_DB = 1  # Streamsite's world uses db 0
CHANNEL = "bench"


def peer_python(log: Callable[[str], None] = print) -> Path:
    """The peer venv's interpreter, after making the venv if it is missing or stale."""
    python = VENV / "bin" / "python"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    with contextlib.suppress(OSError):
        if python.exists() and STAMP.read_text().strip() == wanted:
            return python
    log(f"installing the peer (django-eventstream) into {VENV.relative_to(ROOT)}")
    for args in (
        [sys.executable, "-m", "venv", "--clear", str(VENV)],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "-r", str(REQUIREMENTS)],
    ):  # fmt: skip
        done = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise BenchError(f"{' '.join(args[:4])} failed:\n{done.stderr[-3000:]}")
    STAMP.write_text(wanted + "\n")
    return python


def peer_versions(python: Path) -> dict[str, str]:
    """The peer's packages as installed (from its requirements, exact pins)."""
    names = ("django-eventstream", "Django", "channels", "daphne", "redis", "Twisted")
    code = (
        "import importlib.metadata as m, json;"
        f"print(json.dumps({{n: m.version(n) for n in {names!r}}}))"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {}
    versions: dict[str, str] = json.loads(done.stdout)
    return versions


@dataclass
class Peer:
    """One Daphne process serving the peer project."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def port(self) -> int:
        return int(urlsplit(self.url).port or 80)

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise BenchError(
                f"the peer's daphne exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def log_problems(self, limit: int = 10) -> list[str]:
        with contextlib.suppress(OSError):
            lines = self.log_path.read_text(errors="replace").splitlines()
            return [f"peer: {line}" for line in lines if "Traceback" in line or "ERROR" in line][
                :limit
            ]
        return []

    def publish(self, http: httpx.Client, data: bytes) -> None:
        response = http.post(
            f"{self.url}/publish", content=data, headers={"Content-Type": "application/json"}
        )
        if response.status_code != 204:
            raise BenchError(f"peer publish: HTTP {response.status_code}: {response.text[:300]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the peer's Daphne. With thousands of streams just dropped it can take long to
    shut down (seen: over 20 s on a loaded machine), which must not end the run.
    """
    try:
        stop_process(process, timeout=60)
    except subprocess.TimeoutExpired:
        logger.warning("the peer's daphne (pid %s) did not exit after SIGKILL", process.pid)


def start_peer(
    stack: contextlib.ExitStack, redis_url: str, log_dir: Path, log: Callable[[str], None]
) -> Peer:
    """Start the peer's Daphne on a free loopback port (a socket with the same backlog as
    Streamsite's), Redis on `redis_url`'s host and port, db REDIS_DB; `stack` stops it.
    """
    python = peer_python(log)
    redis = urlsplit(redis_url)
    (listener,) = listen("127.0.0.1", 0)
    stack.callback(listener.close)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("VIRTUAL_ENV", "PYTHONPATH", "DJANGO_SETTINGS_MODULE")
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "bench.peers.eventstream.settings",
        "PEER_REDIS_HOST": redis.hostname or "127.0.0.1",
        "PEER_REDIS_PORT": str(redis.port or 6379),
        "PEER_REDIS_DB": str(REDIS_DB),
        "PYTHONUNBUFFERED": "1",
    }
    log_path = log_dir / "peer-daphne.log"
    log(f"starting the peer (django-eventstream under daphne) on {url}")
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [str(python), "-m", "daphne", "--fd", str(listener.fileno()),
             "bench.peers.eventstream.asgi:application"],
            cwd=ROOT,
            env=env,
            pass_fds=[listener.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    stack.callback(_stop, process)
    peer = Peer(url, process, log_path)

    def answers() -> bool:
        peer.check_alive()
        try:  # the publish view answers GET with 405 once Django is up
            return httpx.get(f"{url}/publish", timeout=1).status_code == 405
        except httpx.TransportError:
            return False

    started = time.monotonic()
    wait_until(answers, timeout=60, message="the peer's daphne to answer")
    log(f"the peer answered after {time.monotonic() - started:.1f} s")
    return peer
