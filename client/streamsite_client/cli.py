"""`streamsite`: publish, tail, consume and watch a Streamsite from a shell. Configured by
`STREAMSITE_URL` (several, comma-separated, for several servers) and `STREAMSITE_TOKEN`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, TextIO

from streamsite_client.client import Client
from streamsite_client.errors import ApiError, PublishError, PublishRefused, StreamsiteError
from streamsite_client.inputs import NotJson, read_events
from streamsite_client.options import StreamOptions
from streamsite_client.terminal import STATS_HEADERS, Progress, stats_rows, table
from streamsite_client.wire import Batch, Reset

OK, FAILED, USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if not args.verbose else logging.INFO)
    urls = args.url.split(",") if args.url else None
    with Client(urls, args.token or os.environ.get("STREAMSITE_TOKEN")) as client:
        try:
            return int(args.command(client, args))
        except KeyboardInterrupt:
            return OK
        except (StreamsiteError, OSError) as error:
            print(f"streamsite: {error}", file=sys.stderr)
            return FAILED


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="streamsite", description=__doc__)
    top.add_argument("--url", help="base URL(s), comma-separated (default: $STREAMSITE_URL)")
    top.add_argument("--token", help="bearer token (default: $STREAMSITE_TOKEN)")
    top.add_argument("-v", "--verbose", action="store_true", help="log retries and reconnects")
    commands = top.add_subparsers(required=True, metavar="COMMAND")

    p = commands.add_parser("publish", help="publish a JSON array or NDJSON of events")
    p.add_argument("event_type", metavar="TYPE")
    p.add_argument("file", metavar="FILE", nargs="?", default="-", help="a file, or - for stdin")
    p.add_argument("--batch-size", type=int, default=500)
    p.set_defaults(command=publish)

    t = commands.add_parser("tail", help="print every event of the types as it comes")
    t.add_argument("event_types", metavar="TYPE", nargs="+")
    t.add_argument("--from", dest="read_from", help="begin, end, or an RFC 3339 time")
    t.add_argument("--topic", action="append", default=[], help="only these topics (globs)")
    t.add_argument("--last-event-id", help="resume after this position")
    t.add_argument("--count", type=int, help="stop after this many events")
    t.set_defaults(command=tail)

    c = commands.add_parser("consume", help="print a subscription's events, committing them")
    c.add_argument("subscription", metavar="SUBSCRIPTION")
    c.add_argument("--streams", type=int, default=1, help="streams in parallel")
    c.add_argument("--batch-limit", type=int)
    c.add_argument("--flush-timeout", type=float, default=1.0, help="seconds (default 1)")
    c.add_argument("--count", type=int, help="stop after at least this many events")
    c.set_defaults(command=consume)

    s = commands.add_parser("stats", help="a live table of partitions, owners and lag")
    s.add_argument("subscription", metavar="SUBSCRIPTION")
    s.add_argument("--once", action="store_true", help="print once and exit")
    s.add_argument("--interval", type=float, default=1.0)
    s.set_defaults(command=stats)
    return top


# -- publish --------------------------------------------------------------------------------


def publish(client: Client, args: argparse.Namespace) -> int:
    source: TextIO = sys.stdin if args.file == "-" else open(args.file)  # noqa: SIM115
    total = os.fstat(source.fileno()).st_size if args.file != "-" else None
    progress = Progress(sys.stderr, total) if sys.stderr.isatty() else None
    published, failed, labels, batch = 0, [], [], []  # type: int, list[str], list[str], list[Any]

    def send() -> None:
        nonlocal published
        if not batch:
            return
        try:
            published += client.publish(args.event_type, batch, batch_size=len(batch))
        except PublishError as error:
            published += error.published
            failed.extend(f"{labels[f.index]}: {_failure(f)}" for f in error.failed)
            if not isinstance(error, PublishRefused):
                raise  # the server could not be reached for good: stop here
        finally:
            batch.clear()
            labels.clear()
        if progress:
            progress.update(published, len(failed), _position(source))

    try:
        with source:
            try:
                for where, event in read_events(source):
                    labels.append(where)
                    batch.append(event)
                    if len(batch) >= args.batch_size:
                        send()
            except NotJson as error:
                send()
                _report(progress, published, failed)
                print(
                    f"streamsite: {error}; {published} events were published before it",
                    file=sys.stderr,
                )
                return FAILED
            send()
    except PublishError as error:
        _report(progress, published, failed)
        print(f"streamsite: {error}", file=sys.stderr)
        return FAILED
    _report(progress, published, failed)
    return FAILED if failed else OK


def _failure(failed: Any) -> str:
    eid = f" (eid {failed.eid})" if failed.eid else ""
    return f"{failed.status} at {failed.step}{eid}: {failed.detail}".rstrip(": ")


def _position(source: TextIO) -> int | None:
    try:
        return source.buffer.tell() if source is not sys.stdin else None  # type: ignore[attr-defined]
    except (OSError, AttributeError, ValueError):
        return None


def _report(progress: Progress | None, published: int, failed: list[str]) -> None:
    if progress:
        progress.update(published, len(failed), progress.total, final=True)
    for line in failed:
        print(f"failed: {line}", file=sys.stderr)
    print(f"{published} events published, {len(failed)} failed", file=sys.stderr)


# -- tail -----------------------------------------------------------------------------------


def tail(client: Client, args: argparse.Namespace) -> int:
    reader = client.reader(
        *args.event_types,
        read_from=args.read_from,
        topics=args.topic,
        last_event_id=args.last_event_id,
    )
    seen = 0
    try:
        for item in reader:
            if isinstance(item, Reset):
                print(
                    json.dumps({"reset": item.reason, "position": item.position}), file=sys.stderr
                )
                continue
            for event in item.events:
                sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
            sys.stdout.flush()
            seen += len(item.events)
            if args.count is not None and seen >= args.count:
                break
    finally:
        reader.close()
    return OK


# -- consume --------------------------------------------------------------------------------


def consume(client: Client, args: argparse.Namespace) -> int:
    """Each batch's events go to stdout and are flushed before the batch is committed: a
    pipe never loses what was committed. A broken pipe stops it without a commit.
    """
    written = threading.Lock()
    done = threading.Event()
    broken: list[BaseException] = []
    count = 0

    def handler(batch: Batch) -> None:
        nonlocal count
        with written:
            try:
                for event in batch.events:
                    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
                sys.stdout.flush()
            except (BrokenPipeError, ValueError) as error:  # ValueError: stdout closed
                broken.append(error)
                done.set()
                raise
            count += len(batch.events)
            if args.count is not None and count >= args.count:
                done.set()

    options = StreamOptions(batch_limit=args.batch_limit, flush_timeout=args.flush_timeout)
    processor = client.processor(args.subscription, handler, streams=args.streams, options=options)
    processor.start()
    try:
        while not done.wait(0.2) and not processor.wait(0):
            pass
    finally:
        processor.stop()
    if broken:
        # Python would complain when it flushes stdout at exit: the reader is gone.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print("streamsite: stdout was closed; the batch in hand was not committed", file=sys.stderr)
        return FAILED
    if processor.failure is not None:
        raise processor.failure
    return OK


# -- stats ----------------------------------------------------------------------------------


def stats(client: Client, args: argparse.Namespace) -> int:
    live = sys.stdout.isatty() and not args.once
    while True:
        try:
            text = table(STATS_HEADERS, stats_rows(client.stats(args.subscription)))
        except ApiError as error:
            if error.status in (401, 403, 404) or args.once:
                raise
            text = f"(no answer: {error})"
        if live:
            stamp = time.strftime("%H:%M:%S")
            sys.stdout.write(f"\x1b[H\x1b[J{args.subscription}  {stamp}\n\n{text}\n")
        else:
            sys.stdout.write(text + "\n" + ("" if args.once else "\n"))
        sys.stdout.flush()
        if args.once:
            return OK
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
