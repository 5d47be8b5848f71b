"""The chaos suite's client processes, each run as `python -m bench.chaos_roles ROLE …`:

- `producer`: publishes `--events` events (a key out of `--keys`, a per-key sequence
  number) at `--rate` events/s in batches, through the Python client with retries against
  every server; after each publish call that returned (every event answered as stored) it
  appends the batch's events to `--out`, one JSON line each, flushed. A batch whose call
  raised goes to `--out` + `.unconfirmed`: the producer was not told they are stored.
- `consumer`: runs the client's processor on the subscription; the handler appends each
  event (eid, key, seq, partition, batch offset, index, consumer, time) to `--out` and
  flushes it, then works `--work-ms` before it returns: the commit follows the record,
  and a kill may fall between them.

They speak only the client's API (streamsite_client), never the server's code.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
import uuid
from pathlib import Path
from types import FrameType

from streamsite_client import Client, StreamOptions
from streamsite_client.errors import PublishError
from streamsite_client.transport import RetryPolicy
from streamsite_client.wire import Batch


def produce(args: argparse.Namespace) -> int:
    client = Client(args.urls, args.token, retry=RetryPolicy(0.1, 2.0, max_elapsed=120.0))
    seqs = [0] * args.keys
    interval = args.batch / args.rate
    start = time.monotonic()
    with open(args.out, "a") as out, open(args.out + ".unconfirmed", "a") as unconfirmed:
        for number, first in enumerate(range(0, args.events, args.batch)):
            # Pacing (not synchronization): spread the events over the run's faults.
            delay = start + number * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            batch = []
            for index in range(first, min(first + args.batch, args.events)):
                key = (index * 7919) % args.keys  # every key, in a scattered order
                seqs[key] += 1
                eid = str(uuid.uuid4())
                batch.append({"metadata": {"eid": eid}, "key": f"k{key:04d}", "seq": seqs[key]})
            try:
                client.publish(args.type, batch, batch_size=len(batch))
            except PublishError as error:
                print(f"producer: batch {number} not confirmed: {error}", file=sys.stderr)
                target = unconfirmed
            else:
                target = out
            for event in batch:
                line = {"eid": event["metadata"]["eid"], "key": event["key"], "seq": event["seq"]}
                target.write(json.dumps(line) + "\n")
            target.flush()
    client.close()
    return 0


def consume(args: argparse.Namespace) -> int:
    client = Client(args.urls, args.token)
    out = open(args.out, "a")  # noqa: SIM115 - open for the process's whole life
    if out.tell() and not Path(args.out).read_bytes().endswith(b"\n"):
        out.write("\n")  # end the line a SIGKILL cut short (its batch was not committed)

    def handler(batch: Batch) -> None:
        now = time.time()
        lines = []
        for index, event in enumerate(batch.events):
            metadata = event.get("metadata") or {}
            record = {
                "eid": metadata.get("eid"),
                "key": event.get("key"),
                "seq": event.get("seq"),
                "partition": batch.cursor["partition"],
                "offset": batch.cursor["offset"],  # the batch's last event's offset
                "index": index,
                "size": len(batch.events),
                "consumer": args.name,
                "time": now,
            }
            lines.append(json.dumps(record) + "\n")
        out.write("".join(lines))
        out.flush()  # before the processor commits the batch
        # The batch's work, after its record: a kill now leaves a recorded batch
        # uncommitted, which must come again (a duplicate, never a loss).
        time.sleep(args.work_ms / 1000)

    def say(text: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} consumer {args.name}: {text}", file=sys.stderr)

    def on_error(error: Exception) -> None:
        say(f"{type(error).__name__}: {error}")

    options = StreamOptions(
        batch_limit=args.batch_limit,
        flush_timeout=1,
        max_uncommitted_events=args.max_uncommitted,
        initial_retry_interval=0.2,
        max_retry_interval=2.0,
        commit_max_elapsed_time=30.0,
        notify_err=lambda error, delay: say(f"{error}; again in {delay:.1f}s"),
        notify_ok=lambda: say("connected"),
    )
    processor = client.processor(
        args.subscription, handler, streams=args.streams, options=options, on_error=on_error
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)  # run()'s `finally` stops the processor

    signal.signal(signal.SIGTERM, stop)
    try:
        processor.run()
    finally:
        out.close()
        client.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(prog="python -m bench.chaos_roles")
    roles = parser.add_subparsers(dest="role", required=True)
    producer = roles.add_parser("producer")
    consumer = roles.add_parser("consumer")
    for role in (producer, consumer):
        role.add_argument("--url", dest="urls", action="append", required=True)
        role.add_argument("--token", required=True)
        role.add_argument("--out", required=True)
    producer.add_argument("--type", required=True)
    producer.add_argument("--events", type=int, required=True)
    producer.add_argument("--keys", type=int, default=300)
    producer.add_argument("--rate", type=float, required=True)
    producer.add_argument("--batch", type=int, default=50)
    consumer.add_argument("--name", required=True)
    consumer.add_argument("--subscription", required=True)
    consumer.add_argument("--streams", type=int, default=1)
    consumer.add_argument("--batch-limit", type=int, default=20)
    consumer.add_argument("--max-uncommitted", type=int, default=100)
    consumer.add_argument("--work-ms", type=float, default=10.0)
    args = parser.parse_args(argv)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    return produce(args) if args.role == "producer" else consume(args)


if __name__ == "__main__":
    sys.exit(main())
