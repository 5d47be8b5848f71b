"""The management commands a new user runs: createclient and up."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading

import httpx
import pytest
import redis
from django.core.management import call_command
from django.core.management.base import CommandError
from rq.job import Job
from rq.registry import FinishedJobRegistry
from rq.worker import Worker

from events.models import ApiToken, Client, token_digest
from streamsite.processes import free_port, wait_until
from tests.conftest import ROOT


@pytest.mark.django_db
def test_createclient_prints_the_token_alone_on_the_last_line(capsys):
    call_command("createclient", "shop", "--publish", "order.*", "--read", "order.*")
    token = capsys.readouterr().out.strip().splitlines()[-1]
    stored = ApiToken.objects.get(client__name="shop")
    assert stored.digest == token_digest(token)
    assert token not in {stored.digest, stored.hint}
    grants = set(Client.objects.get(name="shop").grants.values_list("action", "pattern"))
    assert grants == {("publish", "order.*"), ("read", "order.*")}


@pytest.mark.django_db
def test_createclient_refuses_an_existing_name_but_issues_another_token(capsys):
    call_command("createclient", "shop")
    with pytest.raises(CommandError, match="exists"):
        call_command("createclient", "shop")
    call_command("createclient", "shop", "--new-token")
    assert ApiToken.objects.filter(client__name="shop").count() == 2


def run_up(tmp_path, port, *args, **env):
    environment = {**os.environ, "STREAMSITE_VAR_DIR": str(tmp_path), **env}
    environment.pop("REDIS_URL", None)
    environment.pop("DATABASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "manage.py", "up", "--port", str(port), *args],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_up_runs_everything_and_stops_it_in_order(tmp_path):
    """Fresh var/: migrates, starts an embedded Redis, the servers, a worker and the job
    scheduler, whose jobs the worker runs; SIGTERM ends all.
    """
    port = free_port()
    up = run_up(tmp_path, port, "--servers", "2", JOB_PERIOD_SECONDS="1")
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(line.decode() for line in up.stdout), daemon=True
    )  # type: ignore[union-attr]
    reader.start()
    try:

        def running() -> bool:
            assert up.poll() is None, "".join(lines)
            return any("Streamsite is running at" in line for line in lines)

        wait_until(running, timeout=60, message="manage.py up to say it is running")
        status = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=5).json()
        assert status == {"status": "ok", "redis": "ok", "database": "ok"}
        assert (tmp_path / "db.sqlite3").exists()
        assert (tmp_path / "redis.sock").exists()
        embedded = redis.Redis(unix_socket_path=str(tmp_path / "redis.sock"))
        finished = FinishedJobRegistry("default", connection=embedded)
        wait_until(
            lambda: (
                {"reclaim", "dead_letters"}
                <= {job.func_name.rsplit(".", 1)[-1] for job in _jobs(finished, embedded)}
            ),
            timeout=30,
            message="the worker to finish the scheduled reclaim and dead_letters jobs",
        )
        # Quiet by default: past the banner, the jobs' runs print nothing.
        banner = next(i for i, line in enumerate(lines) if "Press Ctrl-C" in line)
        assert not [line for line in lines[banner + 1 :] if "INFO" in line or "Job OK" in line]
        # A worker that dies is started again, and the terminal says so.
        worker = next(int(w.pid) for w in Worker.all(connection=embedded) if w.pid is not None)
        os.kill(worker, signal.SIGKILL)
        wait_until(
            lambda: any(line.startswith("[up] worker exited") for line in lines),
            timeout=10,
            message="manage.py up to restart the worker",
        )
        wait_until(
            lambda: {int(w.pid) for w in Worker.all(connection=embedded) if w.pid} - {worker},
            timeout=30,
            message="a new worker to register",
        )
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(60)
        reader.join(10)
    output = "".join(lines)
    assert up.returncode == 0, output
    # Each child's lines carry its name; a draining server says so.
    assert any(line.startswith("[server 1]") and "drain" in line for line in lines), output
    stops = [line for line in output.splitlines() if line.startswith("Stopped ")]
    assert [line.split()[1] for line in stops] == [
        "server",
        "server",
        "scheduler",
        "worker",
        "redis",
    ]
    assert (tmp_path / "redis" / "appendonlydir").exists() or (
        tmp_path / "redis" / "appendonly.aof"
    ).exists()


def _jobs(registry: FinishedJobRegistry, connection: redis.Redis) -> list[Job]:
    return Job.fetch_many(registry.get_job_ids(), connection=connection)  # type: ignore[return-value]


def test_up_says_clearly_when_the_port_is_busy(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        up = run_up(tmp_path, port)
        output = up.communicate(timeout=60)[0].decode()
    assert up.returncode != 0
    assert f"Port {port} on 127.0.0.1 is busy" in output
