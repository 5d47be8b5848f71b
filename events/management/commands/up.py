"""`manage.py up`: the whole system on one machine, in the foreground.

Migrations; an embedded Redis when REDIS_URL is unset; the ASGI server (Daphne);
one RQ worker and the scheduler that enqueues the background jobs. Ctrl-C or SIGTERM
stops the children in order: the servers first (they drain), then the scheduler and the
worker, then Redis (which syncs its append-only file as it stops).

The terminal stays readable: every line a child writes is prefixed with its name, and
by default only warnings, errors and notable events get there (a server that drains, a
child restarted); `--verbose` adds access logs and every job's lines. A worker, the
scheduler or a server that exits on its own is started again.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from streamsite.processes import (
    PortBusy,
    default_server_count,
    drain,
    listen,
    server_command,
    spawn,
    stop,
)
from streamsite.redis_server import start_redis, wait_for_redis

# A child that exits this many times in a row, each within seconds of its start, is not
# started again: something is wrong that a restart does not fix.
CRASH_LOOP_SECONDS = 5.0
CRASH_LOOP_EXITS = 3


class Command(BaseCommand):
    _print = threading.Lock()  # one line at a time from the children's relays
    _commands: dict[str, tuple[list[str], dict[str, Any]]]
    _started: dict[str, float] = {}
    _quick_exits: dict[str, int] = {}

    help = (
        "Run Streamsite: migrations, embedded Redis (unless REDIS_URL), servers, a worker "
        "and the job scheduler."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--bind", default="127.0.0.1", help="address to listen on")
        parser.add_argument("--port", type=int, default=8000, help="port to listen on")
        parser.add_argument(
            "--verbose",
            action="store_true",
            help="also print access logs and every background job's lines",
        )
        parser.add_argument(
            "--servers",
            type=int,
            default=default_server_count(),
            help="server processes sharing the port (default: one per CPU)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        bind: str = options["bind"]
        port: int = options["port"]
        try:
            listeners = listen(bind, port, count=max(1, options["servers"]))
        except PortBusy as error:
            raise CommandError(str(error)) from None
        stopping = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stopping.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database migrated.")
        children: list[tuple[str, subprocess.Popen[bytes]]] = []
        verbose: bool = options["verbose"]
        level = "INFO" if verbose else "WARNING"
        try:
            env = {**os.environ, "REDIS_URL": self._redis(children), "LOG_LEVEL": level}
            manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
            commands: dict[str, tuple[list[str], dict[str, Any]]] = {
                "worker": ([*manage, "rqworker", "default", "-v", "1" if verbose else "0"], {}),
                # Exactly one scheduler enqueues the background jobs (events/jobs/schedule.py).
                "scheduler": ([*manage, "rqcron", "events.jobs.schedule", "-l", level], {}),
            }
            for number, listener in enumerate(listeners, start=1):
                fd = listener.fileno()
                command = [*server_command(fd), "-v", "1" if verbose else "0"]
                commands[f"server {number}"] = (command, {"pass_fds": [fd]})
            self._commands = {
                name: (args, {"env": env, **kw}) for name, (args, kw) in commands.items()
            }
            for name in self._commands:
                children.append((name, self._start(name)))
            base = f"http://{'[' + bind + ']' if ':' in bind else bind}:{port}"
            self._wait_until_serving(base, children, stopping)
            if not stopping.is_set():
                self._banner(base, env["REDIS_URL"], len(listeners))
            self._supervise(children, stopping)
        finally:
            for listener in listeners:
                listener.close()
            # Servers drain first, all at once: their streams close with `shutdown` and
            # hand partitions over at once. Then the scheduler, the worker, then Redis.
            servers = [(n, p) for n, p in children if n.startswith("server")]
            for _, process in servers:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for name, process in reversed(children):
                code = drain(process, name) if (name, process) in servers else stop(process, name)
                self.stdout.write(f"Stopped {name} (exit {code}).")

    def _redis(self, children: list[tuple[str, subprocess.Popen[bytes]]]) -> str:
        """REDIS_URL if set and reachable; else start the embedded Redis under var/."""
        if os.environ.get("REDIS_URL"):
            url = os.environ["REDIS_URL"]
            try:
                wait_for_redis(url, timeout=10)
            except RuntimeError as error:
                raise CommandError(f"REDIS_URL {url} does not answer: {error}") from None
            self.stdout.write(f"Using Redis at {url}.")
            return url
        socket_path = settings.EMBEDDED_REDIS_SOCKET
        url = f"unix://{socket_path}"
        if socket_path.exists():
            try:
                wait_for_redis(url, timeout=0.5)
            except RuntimeError:
                socket_path.unlink()  # left behind by a Redis that is gone
            else:
                raise CommandError(
                    f"An embedded Redis already answers at {socket_path}: is "
                    "another `manage.py up` running from this directory?"
                )
        data = settings.VAR_DIR / "redis"
        process = start_redis(
            data, unixsocket=socket_path, persistent=True, log_file=data / "redis.log"
        )
        children.append(("redis", process))
        self.stdout.write(f"Embedded Redis started (append-only file in {data}).")
        return url

    def _wait_until_serving(
        self,
        base: str,
        children: list[tuple[str, subprocess.Popen[bytes]]],
        stopping: threading.Event,
        timeout: float = 60.0,
    ) -> None:
        deadline = time.monotonic() + timeout
        while not stopping.is_set():
            self._check_children(children)
            try:
                with urllib.request.urlopen(f"{base}/health/live", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise CommandError(f"The server did not answer at {base} within {timeout:.0f} s.")
            stopping.wait(0.1)

    @staticmethod
    def _check_children(children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
        for name, process in children:
            if process.poll() is not None:
                raise CommandError(f"The {name} exited unexpectedly (exit {process.returncode}).")

    def _start(self, name: str) -> subprocess.Popen[bytes]:
        """Start a child whose every line reaches this terminal prefixed with its name."""
        args, kwargs = self._commands[name]
        self._started[name] = time.monotonic()
        process = spawn(
            args, cwd=settings.BASE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs
        )
        threading.Thread(target=self._relay, args=(name, process), daemon=True).start()
        return process

    def _relay(self, name: str, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            text = line.decode(errors="replace").rstrip()
            if text:
                with self._print:
                    self.stdout.write(f"[{name}] {text}")

    def _supervise(
        self, children: list[tuple[str, subprocess.Popen[bytes]]], stopping: threading.Event
    ) -> None:
        """Start again a child that exited on its own (Redis excepted: nothing works
        without it); until Ctrl-C or SIGTERM.
        """
        while not stopping.wait(0.5):
            for index, (name, process) in enumerate(children):
                if process.poll() is None or stopping.is_set():
                    continue
                code = process.returncode
                if name not in self._commands:
                    raise CommandError(f"The {name} exited unexpectedly (exit {code}).")
                quick = time.monotonic() - self._started[name] < CRASH_LOOP_SECONDS
                self._quick_exits[name] = self._quick_exits.get(name, 0) + 1 if quick else 0
                if self._quick_exits[name] >= CRASH_LOOP_EXITS:
                    raise CommandError(f"The {name} keeps exiting (exit {code}); see above.")
                with self._print:
                    self.stdout.write(f"[up] {name} exited (exit {code}); restarted")
                children[index] = (name, self._start(name))
        self.stdout.write("Stopping…")

    def _banner(self, base: str, redis_url: str, servers: int) -> None:
        self.stdout.write(
            self.style.SUCCESS(f"Streamsite is running at {base}/ ({servers} server processes)")
        )
        self.stdout.write(f"  API:    {base}/api/  (OpenAPI: {base}/api/openapi.json)")
        self.stdout.write(f"  Docs:   {base}/docs")
        # The interpreter running this, as the user can type it (.venv/bin/python).
        python = os.path.relpath(sys.executable) if sys.prefix != sys.base_prefix else "python"
        manage = f"{python} manage.py"
        self.stdout.write(f"  Admin:  {base}/admin/  (create a login: {manage} createsuperuser)")
        self.stdout.write(
            f"  Token:  {manage} createclient NAME --admin  (the token is the last line)"
        )
        self.stdout.write(f"  Redis:  {redis_url}")
        self.stdout.write("Press Ctrl-C to stop.")
