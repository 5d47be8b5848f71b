"""What every benchmark needs: an isolated Streamsite (its own temporary var dir, SQLite
database, redis-server and Daphne, all on loopback), machine facts and small statistics.

Everything started here is registered on an `ExitStack`, so it stops when the stack closes.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.metadata
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import redis

from streamsite.processes import free_port, listen, server_command, wait_until
from streamsite.redis_server import start_redis

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"


class BenchError(Exception):
    """The benchmark could not run or its results are wrong: the run exits non-zero."""


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so `finally` blocks stop the child processes; a second
    SIGTERM is ignored, so that it cannot cut the clean-up short.
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout`; idempotent."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


def _stat_fields(stat: Path) -> list[str]:
    # /proc/<pid>/stat, from field 3 (state) on: after the parenthesised command name.
    return stat.read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time of a process and its children (Redis forks one for each AOF rewrite);
    this process when None.
    """
    if pid is None:
        return time.process_time()
    tick = os.sysconf("SC_CLK_TCK")
    try:
        # utime, stime, and cutime, cstime: the children it has already reaped.
        total = sum(int(v) for v in _stat_fields(Path(f"/proc/{pid}/stat"))[11:15]) / tick
    except (OSError, IndexError, ValueError):
        return math.nan
    for stat in Path("/proc").glob("[0-9]*/stat"):  # children still running
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = _stat_fields(stat)
            if fields[1] == str(pid):
                total += (int(fields[11]) + int(fields[12])) / tick
    return total


def machine_busy_seconds() -> float:
    """CPU time every CPU of the machine spent busy (not idle, not waiting on I/O)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        # /proc/stat's first line: cpu user nice system idle iowait irq softirq steal …
        ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    return math.nan


def kernel_threads_cpu_seconds() -> float:
    """CPU time of the kernel's own threads (kworker and friends: children of kthreadd),
    where the writeback of Redis's append-only file is accounted.
    """
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = _stat_fields(stat)
            if fields[1] == "2" or stat.parent.name == "2":  # ppid 2: kthreadd's children
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def percentile_ms(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile of `values` (seconds) in milliseconds to the µs; None for none."""
    value = percentile(values, q)
    return None if math.isnan(value) else round(1000 * value, 3)


def compact_aof(client: redis.Redis) -> None:
    """Rewrite Redis's append-only file now, if it has one, and wait for it, so that no
    rewrite (which Redis starts on its own once the file has doubled) runs during a
    measurement.
    """
    if not client.info("persistence").get("aof_enabled"):
        return
    wait_for_aof_rewrite(client)
    try:
        client.bgrewriteaof()
    except redis.ResponseError as error:  # Redis began one of its own: it will do
        if "already in progress" not in str(error):
            raise
    wait_for_aof_rewrite(client)


def wait_for_aof_rewrite(client: redis.Redis, timeout: float = 120) -> None:
    """Return once Redis runs no append-only-file rewrite and has none scheduled."""

    def rewriting() -> bool:
        info = client.info("persistence")
        return bool(info.get("aof_rewrite_in_progress") or info.get("aof_rewrite_scheduled"))

    deadline = time.monotonic() + timeout
    while rewriting():
        if time.monotonic() > deadline:
            raise BenchError(f"an AOF rewrite did not finish within {timeout:g} s")
        time.sleep(0.05)


def _first_line_with(path: str, prefix: str) -> str | None:
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    return None


def machine_info(redis_url: str) -> dict[str, Any]:
    """What a reader needs to compare a result with another machine's."""
    client = redis.Redis.from_url(redis_url)
    try:
        server = client.info("server")
    finally:
        client.close()
    memory = _first_line_with("/proc/meminfo", "MemTotal")
    versions = {}
    for package in (
        "Django",
        "channels",
        "daphne",
        "Twisted",
        "redis",
        "hiredis",
        "orjson",
        "jsonschema-rs",
        "httpx",
    ):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": _first_line_with("/proc/cpuinfo", "model name"),
        "memory": memory,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "redis_version": server.get("redis_version"),
        "packages": versions,
    }


def source_state() -> dict[str, Any]:
    """The commit measured, and the files that differed from it (outside bench/)."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.rstrip("\n") if done.returncode == 0 else ""

    modified = [
        line[3:]
        for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
        if not line[3:].startswith("bench/")
    ]
    return {"commit": git("rev-parse", "--short", "HEAD") or None, "modified": modified}


@dataclass
class World:
    """A running Streamsite of the benchmark's own, reachable on loopback only."""

    var_dir: Path
    env: dict[str, str]
    redis_url: str
    redis_process: subprocess.Popen[bytes]
    server_url: str
    server_processes: list[subprocess.Popen[bytes]]
    server_log: Path

    def django(self, code: str) -> Any:
        """Run `code` in `manage.py shell` against the world's database; it must print one
        JSON document on its last line, which is returned.
        """
        output = _run(
            [sys.executable, "manage.py", "shell", "-c", code], self.env, "manage.py shell"
        )
        lines = output.strip().splitlines()
        if not lines:
            raise BenchError("manage.py shell printed nothing")
        return json.loads(lines[-1])

    def check_alive(self) -> None:
        for name, process in (
            *(("daphne", server) for server in self.server_processes),
            ("redis-server", self.redis_process),
        ):
            if process.poll() is not None:
                raise BenchError(
                    f"{name} exited with {process.returncode}; log tail:\n{self.server_log_tail()}"
                )

    def log_problems(self, limit: int = 10) -> list[str]:
        """Lines of the server's log that report an error or a traceback."""
        with contextlib.suppress(OSError):
            lines = self.server_log.read_text(errors="replace").splitlines()
            return [line for line in lines if " ERROR " in line or "Traceback" in line][:limit]
        return []

    def server_log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.server_log.read_text(errors="replace").splitlines()[-lines:])
        return ""


def _run(args: list[str], env: dict[str, str], what: str, timeout: float = 120) -> str:
    try:
        done = subprocess.run(
            args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"{what} did not finish within {timeout} s") from None
    if done.returncode != 0:
        raise BenchError(f"{what} exited with {done.returncode}:\n{done.stderr[-3000:]}")
    return done.stdout


def start_world(
    stack: contextlib.ExitStack,
    *,
    persistent: bool = True,
    servers: int = 1,
    log: Callable[[str], None] = print,
) -> World:
    """Start an isolated Streamsite; `stack` stops it and removes its files when it closes.

    A temporary STREAMSITE_VAR_DIR holds the SQLite database and Redis's data; redis-server
    runs with AOF (everysec) as in production when `persistent`; `servers` Daphne processes
    share one listening socket, as `manage.py up` runs them.
    """
    var_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="streamsite-bench-")))
    redis_port = free_port()
    log(f"starting redis-server on 127.0.0.1:{redis_port} (AOF {'on' if persistent else 'off'})")
    redis_process = start_redis(
        var_dir / "redis", port=redis_port, persistent=persistent, log_file=var_dir / "redis.log"
    )
    stack.callback(stop_process, redis_process)
    atexit.register(stop_process, redis_process)  # a safety net should the stack be skipped
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "streamsite.settings",
        "STREAMSITE_VAR_DIR": str(var_dir),
        "DATABASE_URL": f"sqlite:///{var_dir / 'db.sqlite3'}",
        "REDIS_URL": redis_url,
        "DEBUG": "false",  # DEBUG keeps every SQL query in memory: never in a benchmark
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    log("migrating a fresh SQLite database")
    _run([sys.executable, "manage.py", "migrate", "--noinput"], env, "manage.py migrate")

    listeners = listen("127.0.0.1", 0, count=servers)
    for listener in listeners:
        stack.callback(listener.close)
    server_url = f"http://127.0.0.1:{listeners[0].getsockname()[1]}"
    server_log = var_dir / "daphne.log"
    log(f"starting {servers} daphne process{'es' if servers > 1 else ''} on {server_url}")
    server_processes = []
    with server_log.open("wb") as log_file:
        for listener in listeners:
            server = subprocess.Popen(
                server_command(listener.fileno()),
                cwd=ROOT,
                env=env,
                pass_fds=[listener.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            stack.callback(stop_process, server)
            atexit.register(stop_process, server)
            server_processes.append(server)
    world = World(var_dir, env, redis_url, redis_process, server_url, server_processes, server_log)

    def live() -> bool:
        world.check_alive()
        try:
            return httpx.get(f"{server_url}/health/live", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(live, timeout=60, message="daphne to answer /health/live")
    ready = httpx.get(f"{server_url}/health/ready", timeout=5)
    if ready.status_code != 200:
        raise BenchError(f"/health/ready answered {ready.status_code}: {ready.text}")
    return world
