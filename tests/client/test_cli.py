"""The `streamsite` command against a real server, run as a user runs it."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.client.helpers import TYPE, create_type, stored, subscribe

COMMAND = str(Path(sys.executable).parent / "streamsite")


def streamsite(server, token: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STREAMSITE_URL": server.url, "STREAMSITE_TOKEN": token}
    return subprocess.run(
        [COMMAND, *args], input=stdin, env=env, capture_output=True, text=True, timeout=30
    )


def line(number: str, **metadata: str) -> str:
    return json.dumps({"metadata": metadata, "order_number": number})


def test_publish_names_a_line_that_is_not_json_and_what_was_published_before_it(
    live_server, consumer_api, consumer_token, tmp_path
):
    create_type(consumer_api)
    source = tmp_path / "orders.ndjson"
    source.write_text("\n".join([line("A-1"), line("A-2"), "{oops", line("A-3")]) + "\n")
    done = streamsite(live_server, consumer_token, "publish", TYPE, str(source))
    assert done.returncode == 1
    assert "line 3 is not JSON" in done.stderr
    assert "2 events were published before it" in done.stderr
    assert stored(consumer_api) == 2


def test_publish_exits_non_zero_naming_the_events_that_failed(
    live_server, consumer_api, consumer_token
):
    create_type(consumer_api)
    eid = "3f1c2a0e-8c1b-4d4e-9f7a-0b6e5d4c3b2a"
    events = [{"metadata": {}, "order_number": "A-1"}, {"metadata": {"eid": eid}}]
    done = streamsite(live_server, consumer_token, "publish", TYPE, "-", stdin=json.dumps(events))
    assert done.returncode == 1
    assert f"failed: event 2: failed at validating (eid {eid})" in done.stderr
    assert "0 events published, 1 failed" in done.stderr
    assert stored(consumer_api) == 0


def test_publish_reads_ndjson_from_stdin(live_server, consumer_api, consumer_token):
    create_type(consumer_api)
    stdin = "\n".join(line(f"A-{i}") for i in range(7))
    done = streamsite(
        live_server, consumer_token, "publish", TYPE, "--batch-size", "3", stdin=stdin
    )
    assert done.returncode == 0, done.stderr
    assert "7 events published, 0 failed" in done.stderr
    assert stored(consumer_api) == 7


def test_tail_prints_events_from_the_beginning_and_filters_topics(
    live_server, consumer_api, consumer_token
):
    create_type(consumer_api)
    stdin = "\n".join(line(f"A-{i}", topic="eu" if i % 2 else "us") for i in range(6))
    assert streamsite(live_server, consumer_token, "publish", TYPE, stdin=stdin).returncode == 0
    args = ("tail", TYPE, "--from", "begin", "--topic", "eu", "--count", "3")
    done = streamsite(live_server, consumer_token, *args)
    assert done.returncode == 0, done.stderr
    got = [json.loads(text)["order_number"] for text in done.stdout.splitlines()]
    assert got == ["A-1", "A-3", "A-5"]


def test_consume_prints_each_batch_before_committing_it_and_stats_shows_the_lag(
    live_server, consumer_api, consumer_token
):
    subscription = subscribe(consumer_api, partitions=2)
    stdin = "\n".join(line(f"A-{i}") for i in range(8))
    assert streamsite(live_server, consumer_token, "publish", TYPE, stdin=stdin).returncode == 0
    before = streamsite(live_server, consumer_token, "stats", subscription, "--once")
    assert before.returncode == 0, before.stderr
    rows = before.stdout.splitlines()
    assert rows[0].split()[:3] == ["EVENT", "TYPE", "PARTITION"]
    assert sum(int(r.split()[-2]) for r in rows[1:]) == 8  # unconsumed, per partition
    done = streamsite(
        live_server, consumer_token, "consume", subscription, "--count", "8", "--batch-limit", "4"
    )
    assert done.returncode == 0, done.stderr
    got = sorted(json.loads(text)["order_number"] for text in done.stdout.splitlines())
    assert got == sorted(f"A-{i}" for i in range(8))
    after = streamsite(live_server, consumer_token, "stats", subscription, "--once")
    assert [int(r.split()[-2]) for r in after.stdout.splitlines()[1:]] == [0, 0]


def on_a_terminal(server, token: str, *args: str, until: bytes, stdin: str = "") -> bytes:
    """Run the command with stdout and stderr on a pseudo-terminal; what it wrote there
    until `until` appeared (then it is stopped) or it exited.
    """
    env = {**os.environ, "STREAMSITE_URL": server.url, "STREAMSITE_TOKEN": token}
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [COMMAND, *args], stdin=subprocess.PIPE, stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    assert process.stdin is not None
    process.stdin.write(stdin.encode())
    process.stdin.close()
    seen = b""
    try:
        deadline = time.monotonic() + 20
        while until not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(leader, 65536)
                except OSError:  # the command exited and closed the terminal
                    break
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(10)
        os.close(leader)
    return seen


def test_on_a_terminal_publish_draws_progress_and_stats_redraws_a_table(
    live_server, consumer_api, consumer_token
):
    subscription = subscribe(consumer_api)
    stdin = "\n".join(line(f"A-{i}") for i in range(5))
    drawn = on_a_terminal(
        live_server, consumer_token, "publish", TYPE, stdin=stdin, until=b"failed"
    )
    assert re.search(rb"\r5 events +[\d,]+/s +0 errors", drawn), drawn
    table = on_a_terminal(live_server, consumer_token, "stats", subscription, until=b"unassigned")
    assert table.startswith(b"\x1b[H\x1b[J" + subscription.encode())
    assert re.search(rb"order\.created +0 +unassigned +- +5", table), table
