"""`python -m bench chaos`: nothing a producer was told is stored is lost, whatever fails.

Two `manage.py up --servers 1` (each its own server, worker and scheduler) share a
redis-server (append-only file on, loopback TCP) and a database (a SQLite file of its own;
`--database postgres` a fresh database at 127.0.0.1:5432; CHAOS_DATABASE_URL overrides). A
producer publishes --events events (a key out of 300, a per-key sequence number) through
the Python client with retries against both servers, at a steady rate over --duration
seconds; three consumers run the client's processor on a subscription from `begin`.

During the run each server is SIGTERMed (it drains) and restarted once, one server is
SIGKILLed (its `up` starts it again), consumers are SIGKILLed five times (and started
again) and Redis is restarted once (SIGTERM: it syncs its append-only file).

Once the producer is done and the committed cursors reach the end of every partition, it
checks (bench/chaos_check.py) that nothing confirmed was lost, duplicates stay bounded and
each key's first deliveries keep its order; it exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from bench.chaos_check import read_lines, report, verdict
from bench.chaos_world import (
    Load,
    Redis,
    Role,
    Up,
    create_database,
    drop_database,
    manage,
    server_env,
)
from bench.cli import positive
from bench.common import RESULTS_DIR, BenchError, exit_on_sigterm, machine_info, source_state
from streamsite.processes import free_port

HELP = "faults under load: servers drained and killed, consumers killed, Redis restarted"
CONSUMERS = 3
STREAMS = 1  # per consumer: 3 sessions for 4 partitions
MAX_UNCOMMITTED = 100
BATCH_LIMIT = 20
WORK_MS = 10  # each batch's work after its record, before its commit

# (fraction of the producing time, fault, target)
FULL_FAULTS = [
    (0.08, "kill-consumer", "c1"),
    (0.16, "drain-up", "a"),
    (0.26, "kill-consumer", "c2"),
    (0.35, "kill-server", "b"),
    (0.44, "kill-consumer", "c3"),
    (0.53, "restart-redis", "redis"),
    (0.62, "kill-consumer", "c1"),
    (0.72, "drain-server", "b"),
    (0.82, "kill-consumer", "c2"),
]
QUICK_FAULTS = [
    (0.10, "kill-consumer", "c1"),
    (0.25, "drain-server", "b"),
    (0.40, "kill-server", "a"),
    (0.55, "restart-redis", "redis"),
    (0.70, "kill-consumer", "c2"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=positive(int), default=None, help="default 20000")
    parser.add_argument(
        "--duration", type=positive(float), default=None, help="producing seconds (default 90)"
    )
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgres", "auto"],
        default="sqlite",
        help="a SQLite file, or a fresh PostgreSQL database at 127.0.0.1:5432 (user postgres); "
        "auto: PostgreSQL when it answers, else SQLite. CHAOS_DATABASE_URL overrides",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 2,000 events over 20 s, 5 faults"
    )
    parser.add_argument(
        "--output", type=Path, default=None, help="default bench/results/chaos.json"
    )
    parser.add_argument("--keep", action="store_true", help="keep the run's files and logs")


class Run:
    """One run: its world, its client processes, the faults and the results."""

    def __init__(self, args: argparse.Namespace, console: Console, var_dir: Path) -> None:
        self.args, self.console, self.var_dir = args, console, var_dir
        self.quick = args.quick
        self.events = args.events or (2000 if self.quick else 20000)
        self.duration = args.duration or (20.0 if self.quick else 90.0)
        self.plan = QUICK_FAULTS if self.quick else FULL_FAULTS
        self.faults: list[dict[str, Any]] = []
        self.started = time.time()
        self.began = time.monotonic()  # the whole run's, set-up and shutdown included
        self.ups: dict[str, Up] = {}
        self.consumers: dict[str, Role] = {}
        # Names of the run's own, so that a database CHAOS_DATABASE_URL names can be reused.
        self.name = f"chaos-{int(self.started)}"
        self.type = f"chaos.order-{int(self.started)}"

    def say(self, text: str) -> None:
        at = time.time() - self.started
        self.console.print(f"[dim]{at:7.1f}s[/] {text}")

    def world(self, stack: contextlib.ExitStack) -> None:
        self.redis = Redis(self.var_dir / "redis", free_port())
        stack.callback(self.redis.stop)
        self.say(f"redis-server on {self.redis.url} (append-only file on)")
        self.machine = machine_info(self.redis.url)
        self.database_url, self.database = create_database(
            self.var_dir, self.args.database, self.say
        )
        stack.callback(drop_database, self.database_url)
        self.say(f"database: {self.database}")
        env = server_env(self.redis.url, self.database_url)
        manage(env, "migrate", "--noinput")
        self.token = manage(env, "createclient", self.name, "--admin").strip().splitlines()[-1]
        for name in ("a", "b"):
            up = Up(name, free_port(), env, self.var_dir)
            up.start()
            stack.callback(up.stop)
            self.ups[name] = up
        for up in self.ups.values():
            up.wait_ready()
            self.say(f"server {up.name}: manage.py up at {up.url}")
        self.urls = [up.url for up in self.ups.values()]
        self.http = httpx.Client(headers={"Authorization": f"Bearer {self.token}"}, timeout=30)
        stack.callback(self.http.close)
        self.subscription = self._subscribe()

    def _subscribe(self) -> str:
        schema = {
            "type": "object",
            "properties": {"key": {"type": "string"}, "seq": {"type": "integer"}},
            "required": ["key", "seq"],
        }
        body = {
            "name": self.type,
            "owning_application": self.name,
            "category": "business",
            "enrichment_strategies": ["metadata_enrichment"],
            "partition_strategy": "hash",
            "partition_key_fields": ["key"],
            "schema": {"type": "json_schema", "schema": json.dumps(schema)},
            "default_statistic": {
                "messages_per_minute": 1000,
                "message_size": 100,
                "read_parallelism": 4,
                "write_parallelism": 4,
            },
        }
        created = self.http.post(f"{self.urls[0]}/api/event-types", json=body)
        if created.status_code != 201:
            raise BenchError(f"creating the event type: {created.status_code} {created.text}")
        body = {"owning_application": self.name, "event_types": [self.type], "read_from": "begin"}
        created = self.http.post(f"{self.urls[0]}/api/subscriptions", json=body)
        if created.status_code != 201:
            raise BenchError(f"creating the subscription: {created.status_code} {created.text}")
        return str(created.json()["id"])

    def clients(self, stack: contextlib.ExitStack) -> None:
        urls = [arg for url in self.urls for arg in ("--url", url)]
        for number in range(1, CONSUMERS + 1):
            name = f"c{number}"
            rotated = urls[2 * (number % 2) :] + urls[: 2 * (number % 2)]
            role = Role(
                name,
                [
                    "consumer",
                    *rotated,
                    *("--token", self.token, "--name", name),
                    *("--subscription", self.subscription, "--out", str(self.out(name))),
                    *("--streams", str(STREAMS), "--batch-limit", str(BATCH_LIMIT)),
                    *("--max-uncommitted", str(MAX_UNCOMMITTED), "--work-ms", str(WORK_MS)),
                ],
                self.var_dir / f"{name}.log",
            )
            role.start()
            stack.callback(role.stop)
            self.consumers[name] = role
        self.producer = Role(
            "producer",
            [
                "producer",
                *urls,
                *("--token", self.token, "--type", self.type, "--out", str(self.out("producer"))),
                *("--events", str(self.events), "--rate", str(self.events / self.duration)),
            ],
            self.var_dir / "producer.log",
        )
        self.started = time.time()
        self.producer.start()
        stack.callback(self.producer.stop)
        self.say(f"producer: {self.events} events over {self.duration:g} s; {CONSUMERS} consumers")

    def out(self, name: str) -> Path:
        return self.var_dir / f"{name}.jsonl"

    def inject(self) -> None:
        """Each planned fault at its time (pacing, not synchronization)."""
        for fraction, kind, target in self.plan:
            delay = self.started + fraction * self.duration - time.time()
            if delay > 0:
                time.sleep(delay)
            at = time.time() - self.started
            detail = self.fault(kind, target)
            took = time.time() - self.started - at
            self.faults.append(
                {"at": round(at, 2), "kind": kind, "target": target, "took": round(took, 2)}
            )
            self.say(f"{kind} {target}: {detail} ({took:.1f} s)")

    def fault(self, kind: str, target: str) -> str:
        if kind == "kill-consumer":
            self.consumers[target].kill()
            time.sleep(1.0)  # down for a second, so that its partitions move on
            self.consumers[target].start()
            return "SIGKILL, started again after 1 s"
        if kind == "restart-redis":
            down = self.redis.restart()
            return f"SIGTERM, started again on the same port and AOF; down {down:.1f} s"
        up = self.ups[target]
        if kind == "drain-up":
            code = up.stop()
            up.start()
            up.wait_ready()
            return f"SIGTERM to manage.py up (exit {code}), started again, ready"
        signum = signal.SIGKILL if kind == "kill-server" else signal.SIGTERM
        old = up.signal_server(signum)
        up.wait_ready(other_than=old)
        return f"{signum.name} to its server (pid {old}); up started another, ready"

    def wait_producer(self) -> None:
        assert self.producer.process is not None
        try:
            code = self.producer.process.wait(self.duration + 300)
        except Exception:
            raise BenchError("the producer did not finish in time") from None
        if code != 0:
            raise BenchError(f"the producer exited with {code}; see {self.producer.log}")
        self.produced_at = time.time() - self.started
        self.say("producer done")

    def lag(self) -> list[tuple[str, str, str]]:
        """(partition, committed, newest) for each partition not consumed to its end."""
        url = self.urls[0]
        newest = self.http.get(f"{url}/api/event-types/{self.type}/partitions").json()
        cursors = self.http.get(f"{url}/api/subscriptions/{self.subscription}/cursors").json()
        committed = {c["partition"]: c["offset"] for c in cursors["items"]}
        return [
            (p["partition"], committed.get(p["partition"], "BEGIN"), p["newest_available_offset"])
            for p in newest
            if committed.get(p["partition"]) != p["newest_available_offset"]
        ]

    def wait_caught_up(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        self.behind_at: dict[str, float] = {}  # partition: when it was last seen behind
        while True:
            try:
                behind = self.lag()
            except (httpx.HTTPError, ValueError, KeyError) as error:
                behind = [("?", "?", str(error))]
            for partition, _, _ in behind:
                self.behind_at[partition] = round(time.time() - self.started, 1)
            if not behind:
                break
            if time.monotonic() > deadline:
                raise BenchError(f"the consumers did not catch up within {timeout:g} s: {behind}")
            for name, role in self.consumers.items():
                if role.process is not None and role.process.poll() is not None:
                    raise BenchError(f"consumer {name} exited; see {role.log}")
            time.sleep(0.2)
        self.caught_up_at = time.time() - self.started
        self.say("committed cursors at the end of every partition")

    def stop(self) -> None:
        processes: list[Role | Up | Redis] = [*self.consumers.values(), *self.ups.values()]
        for process in [*processes, self.redis]:
            process.stop()

    def results(self, load: dict[str, Any]) -> dict[str, Any]:
        published, _ = read_lines([self.out("producer")])
        unconfirmed, _ = read_lines([Path(str(self.out("producer")) + ".unconfirmed")])
        deliveries, broken = read_lines(self.out(name) for name in self.consumers)
        bound = CONSUMERS * STREAMS * MAX_UNCOMMITTED * len(self.faults)
        found = verdict(
            published,
            unconfirmed,
            deliveries,
            self.faults,
            started=self.started,
            duplicate_bound=bound,
        )
        found["counts"]["cut_lines"] = broken
        problems, notable = [], []
        for up in self.ups.values():
            for line in up.log.read_text(errors="replace").splitlines():
                if any(word in line for word in ("Traceback", "ERROR", "CRITICAL")):
                    problems.append(f"{up.name}: {line}")
                elif line.startswith("[up]"):
                    notable.append(f"{up.name}: {line}")
        return {
            "benchmark": "chaos",
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "source": source_state(),
            "machine": self.machine,
            "load": load,
            "settings": {
                "events": self.events,
                "producing_seconds": self.duration,
                "keys": 300,
                "publish_batch": 50,
                "partitions": 4,
                "consumers": CONSUMERS,
                "streams_per_consumer": STREAMS,
                "batch_limit": BATCH_LIMIT,
                "max_uncommitted_events": MAX_UNCOMMITTED,
                "handler_work_ms_per_batch": WORK_MS,
                "database": self.database,
                "quick": self.quick,
            },
            "faults": self.faults,
            "seconds": {
                "producing": round(self.produced_at, 1),
                "until_caught_up": round(self.caught_up_at, 1),
                "whole_run": round(time.monotonic() - self.began, 1),
                "partitions_last_behind": dict(sorted(self.behind_at.items())),
            },
            "consumer_log_tails": {
                name: role.log.read_text(errors="replace").splitlines()[-4:]
                for name, role in self.consumers.items()
            },
            **found,
            "server_log_problems": problems[:30],
            "server_log_notable": notable[:30],
        }


def main(args: argparse.Namespace) -> int:
    console = Console(highlight=False)
    exit_on_sigterm()
    var_dir = Path(tempfile.mkdtemp(prefix="streamsite-chaos-"))
    run = Run(args, console, var_dir)
    ok = False
    try:
        with contextlib.ExitStack() as stack:
            run.world(stack)
            run.clients(stack)
            load = Load()
            run.inject()
            run.wait_producer()
            run.wait_caught_up()
            run.stop()
            results = run.results(load.summary())
        report(console, results)
        ok = all(results["checks"].values())
        output = args.output or (None if args.quick else RESULTS_DIR / "chaos.json")
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(json.dumps(results, indent=2) + "\n")
            console.print(f"[dim]results written to {output}[/]")
        return 0 if ok else 1
    except BenchError as error:
        console.print(f"[red bold]error:[/] {error}")
        return 1
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]")
        return 130
    finally:
        if ok and not args.keep:
            shutil.rmtree(var_dir, ignore_errors=True)
        else:
            console.print(f"[dim]the run's files and logs are in {var_dir}[/]")
