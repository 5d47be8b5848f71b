"""Publish-to-delivery latency: a producer process POSTs at a fixed rate while one session
of a subscription (read_from end) streams; each event's latency is the time its batch's
bytes were read here minus the `sent_ns` its producer put in it, just before sending.
Both clocks are this machine's wall clock (time.time_ns()). The part after the server's
`metadata.received_at` (set as it handles the POST; milliseconds, truncated) is reported
too: it is the server's store-to-delivery path, without the producer's request.
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bench.common import BenchError, World, percentile_ms
from bench.consumers import Consumed, SubscriptionReader, consumer_http, subscribe
from bench.cpu import CpuMeter, CpuUse
from bench.pacer import Paced, Pacer, Pacing

STRAGGLER_SECONDS = 5.0  # an acknowledged event not delivered by then counts as missing


@dataclass
class Latency(CpuUse):
    """What the latency phase measured; latencies of events sent in the producer's window."""

    rate: int
    publish_batch: int
    batch_limit: int
    seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds, one per event
    after_receipt: list[float] = field(default_factory=list)  # from metadata.received_at
    received: int = 0  # events with sent_ns received, window or not
    duplicates: int = 0
    paced: Paced = field(default_factory=Paced)
    consumed: Consumed = field(default_factory=lambda: Consumed("latency"))
    errors: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    cpu_wall: float = 0.0

    def ms(self, q: float, values: list[float] | None = None) -> float | None:
        return percentile_ms(self.latencies if values is None else values, q)

    def as_json(self) -> dict[str, Any]:
        def summary(values: list[float]) -> dict[str, float | None]:
            return {f"p{q:g}": self.ms(q, values) for q in (50, 90, 99, 99.9)} | {
                "max": self.ms(100, values)
            }

        return {
            "rate": self.rate,
            "publish_batch": self.publish_batch,
            "batch_limit": self.batch_limit,
            "seconds": self.seconds,
            "events_sent_in_window": self.paced.window_acknowledged,
            "events_measured": len(self.latencies),
            "latency_ms": summary(self.latencies),
            "from_received_at_ms": summary(self.after_receipt),
            "publish_round_trip_ms": summary(self.paced.publish_seconds),
            "producer_lag_ms": summary(self.paced.lag_seconds),
            "batches_received": self.consumed.batches,
            "commits": self.consumed.commits,
            "commit_ms": self.consumed.commit_ms(),
            "cpu_percent": {k: round(self.cpu_percent(k), 1) for k in self.cpu},
            "errors": self.errors,
        }


async def measure_latency(
    world: World, tokens: dict[str, str], args: argparse.Namespace, pids: dict[str, list[int]]
) -> Latency:
    result = Latency(args.rate, args.publish_batch, args.latency_batch_limit, args.latency_seconds)
    samples: list[tuple[int, int, str, str]] = []  # sent_ns, received_ns, eid, received_at

    def on_events(events: list[dict[str, Any]], received_ns: int) -> None:
        for event in events:
            if "sent_ns" in event:
                metadata = event["metadata"]
                samples.append(
                    (event["sent_ns"], received_ns, metadata["eid"], metadata["received_at"])
                )

    params = {
        "batch_limit": args.latency_batch_limit,
        "max_uncommitted_events": args.max_uncommitted,
        "batch_flush_timeout": 1,
    }
    async with consumer_http(world.server_url, tokens["consumer"]) as http:
        subscription = await subscribe(http, "end")
        reader = SubscriptionReader(
            http,
            subscription,
            params,
            result.consumed,
            commit_interval=args.commit_interval / 1000,
            on_events=on_events,
        )
        stop = asyncio.Event()
        reading = asyncio.create_task(reader.run(stop, max_seconds=args.latency_seconds + 120))
        connected = asyncio.create_task(reader.connected.wait())
        await asyncio.wait({reading, connected}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if not reader.connected.is_set():
            connected.cancel()
            stop.set()
            await reading  # raises the stream's error, if it had one
            raise BenchError("the latency stream did not connect within 30 s")
        pacer = Pacer(
            Pacing(
                world.server_url,
                tokens["producer"],
                args.rate,
                args.publish_batch,
                args.latency_warmup,
                args.latency_seconds,
                args.event_bytes,
                args.partitions,
            )
        )
        try:
            pacer.start()
            meter = CpuMeter(pids)
            result.paced = await pacer.finished()
            result.cpu, result.cpu_wall = meter.stop()
            result.cpu["producer"] = result.paced.cpu_seconds
            result.cpu["other"] = max(0.0, result.cpu["other"] - result.paced.cpu_seconds)
        except queue.Empty:
            raise BenchError("the producer process sent no results") from None
        finally:
            pacer.stop()
        deadline = time.monotonic() + STRAGGLER_SECONDS
        while len(samples) < result.paced.acknowledged and time.monotonic() < deadline:
            if reading.done():
                break
            await asyncio.sleep(0.01)
        stop.set()
        await reading
    paced = result.paced
    window = [
        sample for sample in samples if paced.window_start_ns <= sample[0] < paced.window_end_ns
    ]
    result.latencies = [(r - s) / 1e9 for s, r, _, _ in window]
    result.after_receipt = [r / 1e9 - _epoch_seconds(at) for _, r, _, at in window]
    result.received = len(samples)
    result.duplicates = len(samples) - len({sample[2] for sample in samples})
    result.errors = paced.errors + result.consumed.errors
    delivered = len({sample[2] for sample in window})
    if delivered < paced.window_acknowledged:
        result.errors.append(
            f"{paced.window_acknowledged} events acknowledged in the window, {delivered} "
            f"delivered by {STRAGGLER_SECONDS:.0f} s after the producer's last answer"
        )
    if result.duplicates:
        result.errors.append(f"{result.duplicates} events delivered twice")
    return result


def _epoch_seconds(rfc3339: str) -> float:
    """Seconds since the epoch of an API timestamp like 2026-11-21T10:00:00.123Z."""
    return datetime.fromisoformat(rfc3339).timestamp()
