"""Many SSE readers held cheaply, for `bench fanout`: worker processes, each one asyncio loop
holding thousands of connections as bare `asyncio.Protocol`s (no task, stream or HTTP client
per connection), driven by the benchmark over a pipe.

A reader writes one GET, checks the answer's status and content type, then only scans what
arrives for `"sent_ns": <digits>` (the publisher's time.time_ns() in the event) and records
`time.time_ns()` at arrival minus it: no parsing per event, so that 20,000 readers cost
the client little. The first reader of each worker is the exception when `check` is set:
it parses the body fully (chunked framing, then SSE messages) and checks the contract
(bench/sse_check.py).
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import re
import resource
import socket
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from bench.common import BenchError
from bench.sse_check import SseCheck

SENT_NS = re.compile(rb'"sent_ns": ?(\d+)\D')
CARRY = 48  # bytes kept between reads: a marker cut in two is found whole in the next one
IP_BIND_ADDRESS_NO_PORT = 24  # Linux: bind the address now, the port at connect (per 4-tuple)
MAX_ERRORS = 20  # kept per worker; the count is exact


def raise_open_files_limit(wanted: int = 200_000) -> int:
    """Raise RLIMIT_NOFILE towards `wanted` (the hard limit too, where allowed: root); the
    soft limit now in force. Child processes inherit it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(hard, wanted)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass
class Target:
    """Where readers connect, and how: the request's path and headers, the source address
    of this worker's connections, and whether the contract is checked on one of them.
    """

    host: str
    port: int
    path: str
    headers: dict[str, str]
    source: str = "127.0.0.1"
    check: bool = False  # Streamsite's SSE contract (event: batch with id:, keep-alives without)
    connect_concurrency: int = 32  # connections waiting for their answer's head, at most

    def request(self) -> bytes:
        lines = [f"GET {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class Pool:
    """One worker's readers and what they received."""

    target: Target
    readers: list[Reader] = field(default_factory=list)
    opening: int = 0  # connecting or waiting for the answer's head
    connected: int = 0  # answered 200 text/event-stream
    failed: int = 0  # refused, errors, or another answer
    lost: int = 0  # closed by the server after connecting
    got_any: int = 0  # readers that have received at least one event
    errors: list[str] = field(default_factory=list)
    latencies: dict[int, list[int]] = field(default_factory=dict)  # sent_ns → ns per reader
    closing: bool = False
    slots: asyncio.Semaphore | None = None
    check: SseCheck | None = None

    def error(self, text: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(text[:300])

    def status(self) -> dict[str, Any]:
        checked = self.check.summary() if self.check is not None else None
        return {
            "opening": self.opening,
            "connected": self.connected,
            "failed": self.failed,
            "lost": self.lost,
            "got_any": self.got_any,
            "errors": self.errors,
            "check": checked,
            "cpu_seconds": time.process_time(),
        }


class Reader(asyncio.Protocol):
    """One SSE connection: the request, the answer's head, then `sent_ns` markers."""

    __slots__ = ("carry", "got", "head", "ok", "pool", "transport")

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.head: bytes | None = b""  # None once the head is read
        self.carry = b""
        self.got = False
        self.ok = False  # answered 200 text/event-stream
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.pool.target.request())

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        if self.head is not None:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            head, data = self.head[:end], self.head[end + 4 :]
            self.head = None
            if not self._answered(head, data) or not data:
                return
        self.body(data, now)

    def _answered(self, head: bytes, rest: bytes) -> bool:
        """Whether the answer is a stream (its head read; `rest` what followed it)."""
        pool = self.pool
        pool.opening -= 1
        if pool.slots is not None:
            pool.slots.release()
        status_line, _, fields = head.partition(b"\r\n")
        lower = fields.lower()
        if b" 200 " not in status_line + b" " or b"text/event-stream" not in lower:
            pool.failed += 1
            pool.error(f"answer: {status_line!r} {rest[:200]!r}")
            if self.transport is not None:
                self.transport.close()
            return False
        pool.connected += 1
        self.ok = True
        if pool.check is not None and pool.check.reader is self:
            pool.check.start(chunked=b"transfer-encoding: chunked" in lower)
        return True

    def body(self, data: bytes, now: int) -> None:
        pool = self.pool
        if pool.check is not None and pool.check.reader is self:
            pool.check.feed(data)
        buffer = self.carry + data if self.carry else data
        last = 0
        for match in SENT_NS.finditer(buffer):
            sent = int(match.group(1))
            pool.latencies.setdefault(sent, []).append(now - sent)
            last = match.end() - 1
            if not self.got:
                self.got = True
                pool.got_any += 1
        self.carry = buffer[max(last, len(buffer) - CARRY) :]

    def connection_lost(self, exc: Exception | None) -> None:
        pool = self.pool
        if self.head is not None:  # before the answer's head
            pool.opening -= 1
            if pool.slots is not None:
                pool.slots.release()
            pool.failed += 1
            pool.error(f"closed before an answer: {exc!r}")
        elif self.ok and not pool.closing:
            pool.lost += 1
            pool.error(f"closed by the server: {exc!r}")


async def _open(pool: Pool, count: int) -> None:
    """Open `count` readers, at most `connect_concurrency` waiting for their answer at once."""
    loop = asyncio.get_running_loop()
    target = pool.target
    if pool.slots is None:
        pool.slots = asyncio.Semaphore(target.connect_concurrency)
    for _ in range(count):
        await pool.slots.acquire()
        if pool.closing:
            return
        pool.opening += 1
        reader = Reader(pool)
        if pool.check is None and target.check:
            pool.check = SseCheck(reader)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((target.source, 0))
            sock.setblocking(False)
            await loop.sock_connect(sock, (target.host, target.port))
            await loop.create_connection(lambda r=reader: r, sock=sock)  # type: ignore[misc]
        except OSError as error:
            sock.close()
            pool.opening -= 1
            pool.slots.release()
            pool.failed += 1
            pool.error(f"connect: {error!r}")
            continue
        pool.readers.append(reader)


async def _serve(conn: Connection, target: Target) -> None:
    """Answer the benchmark's commands until it says close."""
    pool = Pool(target)
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    tasks: set[asyncio.Task[None]] = set()

    def on_command() -> None:
        while conn.poll():
            command, *args = conn.recv()
            if command == "open":
                task = loop.create_task(_open(pool, args[0]))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                conn.send(None)
            elif command == "status":
                conn.send(pool.status())
            elif command == "count":
                conn.send(len(pool.latencies.get(args[0], ())))
            elif command == "latencies":
                conn.send({sent: pool.latencies.get(sent, []) for sent in args[0]})
            elif command == "close":
                pool.closing = True
                for reader in pool.readers:
                    if reader.transport is not None:
                        reader.transport.abort()  # RST: no TIME_WAIT left on the ports
                conn.send(None)
                if not done.done():
                    done.set_result(None)

    loop.add_reader(conn.fileno(), on_command)
    try:
        await done
    finally:
        loop.remove_reader(conn.fileno())
        for task in tasks:
            task.cancel()


def _worker(conn: Connection, target: Target) -> None:
    raise_open_files_limit()
    # Thousands of long-lived protocol objects: keep the collector from rescanning them.
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
    asyncio.run(_serve(conn, target))


class ReaderPool:
    """Worker processes holding readers of one target, each from its own source address;
    every call waits for every worker's answer.
    """

    def __init__(self, targets: list[Target]) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipes: list[Connection] = []
        self.processes: list[multiprocessing.process.BaseProcess] = []
        for target in targets:
            ours, theirs = context.Pipe()
            process = context.Process(target=_worker, args=(theirs, target), daemon=True)
            process.start()
            theirs.close()
            self._pipes.append(ours)
            self.processes.append(process)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]

    def _ask(self, *command: Any, timeout: float = 60.0) -> list[Any]:
        answers = []
        try:
            for pipe in self._pipes:
                pipe.send(command)
            for pipe, process in zip(self._pipes, self.processes, strict=True):
                if not pipe.poll(timeout):
                    raise BenchError(f"reader worker {process.pid} did not answer {command[0]!r}")
                answers.append(pipe.recv())
        except (EOFError, OSError) as error:
            codes = [p.exitcode for p in self.processes]
            raise BenchError(f"a reader worker died ({error!r}; exit codes {codes})") from None
        return answers

    def open(self, count: int) -> None:
        """Open `count` more readers, spread evenly over the workers; returns at once."""
        workers = len(self._pipes)
        for i, pipe in enumerate(self._pipes):
            pipe.send(("open", count // workers + (1 if i < count % workers else 0)))
        for pipe in self._pipes:
            if not pipe.poll(60):
                raise BenchError("a reader worker did not start opening readers")
            pipe.recv()

    def status(self) -> dict[str, Any]:
        """The workers' counts summed; their errors, contract checks and CPU seconds listed."""
        answers = self._ask("status")
        total: dict[str, Any] = {
            key: sum(a[key] for a in answers)
            for key in ("opening", "connected", "failed", "lost", "got_any")
        }
        total["errors"] = [e for a in answers for e in a["errors"]]
        total["checks"] = [a["check"] for a in answers if a["check"] is not None]
        total["cpu_seconds"] = [a["cpu_seconds"] for a in answers]
        return total

    def count(self, sent_ns: int) -> int:
        """How many readers have received the event sent at `sent_ns`."""
        return sum(self._ask("count", sent_ns))

    def latencies(self, sent: list[int]) -> dict[int, list[int]]:
        """Each event's latencies (ns), one per reader that received it."""
        merged: dict[int, list[int]] = {s: [] for s in sent}
        for answer in self._ask("latencies", sent):
            for s, values in answer.items():
                merged[s].extend(values)
        return merged

    def close(self) -> None:
        """Drop every connection and end the workers; idempotent."""
        for pipe, process in zip(self._pipes, self.processes, strict=True):
            if process.is_alive():
                try:
                    pipe.send(("close",))
                    pipe.poll(30) and pipe.recv()
                except (OSError, EOFError):
                    pass
            process.join(10)
            if process.is_alive():
                process.terminate()
                process.join(5)
