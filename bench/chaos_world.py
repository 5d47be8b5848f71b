"""The chaos suite's world: a redis-server with its append-only file on a loopback TCP port,
a database (SQLite or PostgreSQL), two `manage.py up --servers 1` and the client processes,
each of which can be stopped, killed and started again.

Every process is started with `streamsite.processes.spawn` (its own session; it gets
SIGTERM should this process die) and registered on an ExitStack that stops it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.common import ROOT, BenchError, stop_process
from streamsite.processes import spawn, wait_until
from streamsite.redis_server import start_redis

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=2"


def children_of(pid: int) -> list[int]:
    """The pids whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            if stat.read_text().rsplit(")", 1)[1].split()[1] == str(pid):
                found.append(int(stat.parent.name))
    return found


def cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


class Redis:
    """redis-server on 127.0.0.1:`port`, AOF on; `restart` stops it with SIGTERM (it syncs
    its append-only file) and starts it again on the same port and data directory.
    """

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir, self.port = data_dir, port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        return start_redis(
            self.data_dir, port=self.port, persistent=True, log_file=self.data_dir / "redis.log"
        )

    def restart(self) -> float:
        """Seconds it was down."""
        began = time.monotonic()
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            raise BenchError("redis-server did not stop within 30 s of SIGTERM") from None
        self.process = self._start()
        return time.monotonic() - began

    def stop(self) -> None:
        stop_process(self.process)


def create_database(var_dir: Path, choice: str, log: Callable[[str], None]) -> tuple[str, str]:
    """The database's URL and a description: CHAOS_DATABASE_URL when set; else a fresh
    PostgreSQL database at 127.0.0.1:5432 (user postgres) for `postgres`, or for `auto`
    when it answers; else a SQLite file under `var_dir`.
    """
    if os.environ.get("CHAOS_DATABASE_URL"):
        return os.environ["CHAOS_DATABASE_URL"], "CHAOS_DATABASE_URL"
    sqlite = f"sqlite:///{var_dir / 'db.sqlite3'}"
    if choice == "sqlite":
        return sqlite, "SQLite"
    try:
        import psycopg

        name = f"streamsite_chaos_{os.getpid()}_{int(time.time())}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
    except Exception as error:
        if choice == "postgres":
            raise BenchError(f"PostgreSQL at 127.0.0.1:5432 cannot be used: {error}") from None
        log(f"PostgreSQL at 127.0.0.1:5432 cannot be used ({error}); using SQLite")
        return sqlite, "SQLite (PostgreSQL at 127.0.0.1:5432 did not answer)"
    return f"postgres://postgres@127.0.0.1:5432/{name}", f"PostgreSQL (database {name})"


def drop_database(url: str) -> None:
    """Drop a database `create_database` created (not one CHAOS_DATABASE_URL named)."""
    name = url.rsplit("/", 1)[1]
    if not url.startswith("postgres://") or not name.startswith("streamsite_chaos_"):
        return
    with contextlib.suppress(Exception):
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Up:
    """One `manage.py up --servers 1 --port P`: its server, worker and scheduler. Its
    output goes to `log` (appended over restarts).
    """

    def __init__(self, name: str, port: int, env: dict[str, str], var_dir: Path) -> None:
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}"
        self.env = {**env, "STREAMSITE_VAR_DIR": str(var_dir / name)}
        self.log = var_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = spawn(
                [sys.executable, "manage.py", "up", "--servers", "1", "--port", str(self.port)],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def server_pid(self) -> int | None:
        """The pid of its server child (Daphne), if one runs."""
        if self.process is None or self.process.poll() is not None:
            return None
        for pid in children_of(self.process.pid):
            if "daphne" in cmdline(pid):
                return pid
        return None

    def ready(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise BenchError(f"{self.name}'s manage.py up exited; see {self.log}")
        try:
            return httpx.get(f"{self.url}/health/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def wait_ready(self, timeout: float = 90.0, other_than: int | None = None) -> int:
        """Wait until a server child other than `other_than` answers ready; its pid."""

        def serving() -> int | None:
            pid = self.server_pid()
            return pid if pid is not None and pid != other_than and self.ready() else None

        try:
            pid = wait_until(serving, timeout=timeout, message=self.name, interval=0.1)
            assert pid is not None
            return pid
        except TimeoutError:
            raise BenchError(f"{self.name} did not serve within {timeout:g} s") from None

    def signal_server(self, signum: int) -> int:
        """Send `signum` to the server child (up starts another); its pid."""
        pid = self.server_pid()
        if pid is None:
            raise BenchError(f"{self.name} runs no server child")
        os.kill(pid, signum)
        return pid

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM to `up` (its server drains, then it stops the rest); its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise BenchError(f"{self.name}'s up did not stop within {timeout:g} s") from None
        return self.process.returncode


class Role:
    """A client process (`python -m bench.chaos_roles …`), restartable; stderr to a log."""

    def __init__(self, name: str, args: list[str], log: Path) -> None:
        self.name, self.args, self.log = name, args, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = spawn(
                [sys.executable, "-m", "bench.chaos_roles", *self.args],
                cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=20)


def server_env(redis_url: str, database_url: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("STREAMSITE_")},
        "DJANGO_SETTINGS_MODULE": "streamsite.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": secrets.token_urlsafe(40),
        "DEBUG": "false",
        "PYTHONUNBUFFERED": "1",
    }


def manage(env: dict[str, str], *args: str, timeout: float = 180) -> str:
    """`manage.py ARGS` against the world's database; its stdout."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(
            f"manage.py {args[0]} exited with {done.returncode}:\n{done.stderr[-3000:]}"
        )
    return done.stdout


class Load:
    """The machine's load average, sampled every second in a thread."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(1.0):
            self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict[str, Any]:
        self._stop.set()
        values = self.samples or [os.getloadavg()[0]]
        return {
            "cpus": os.cpu_count(),
            "load1_mean": round(sum(values) / len(values), 2),
            "load1_max": round(max(values), 2),
        }
