"""A processor keeps going when a server under it is SIGTERMed or SIGKILLed: its streams
move to the other server (both share Redis and the database), and every event is
handled at least once and committed.
"""

from __future__ import annotations

import signal
import threading
from collections import Counter

import pytest
from streamsite_client import Batch, Client, ReaderBatch, Reset, StreamOptions

from tests.client.helpers import TYPE, create_type, orders, subscribe, wait_for


def unconsumed(client: Client, subscription: str) -> int:
    partitions = client.stats(subscription)["items"][0]["partitions"]
    return sum(p.get("unconsumed_events", 0) for p in partitions)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_processor_survives_its_server_s_end(
    sig, live_server, doomed_server, consumer_api, consumer_token
):
    subscription = subscribe(consumer_api, partitions=2)
    seen: Counter[str] = Counter()
    lock = threading.Lock()
    errors: list[Exception] = []
    retries: list[str] = []

    def handler(batch: Batch) -> None:
        with lock:
            seen.update(e["order_number"] for e in batch.events)

    options = StreamOptions(
        batch_limit=10,
        flush_timeout=1,
        max_uncommitted_events=20,
        initial_retry_interval=0.1,
        max_retry_interval=0.5,
        notify_err=lambda error, delay: retries.append(str(error)),
    )
    # Stream 0 starts on the doomed server, stream 1 on the other; each moves on to the
    # next URL when its server fails.
    with Client([doomed_server.url, live_server.url], consumer_token) as client:
        client.publish(TYPE, orders(200))
        with client.processor(
            subscription, handler, streams=2, options=options, on_error=errors.append
        ) as processor:
            wait_for(lambda: len(seen) >= 20, what="processing to start")
            stats = client.stats(subscription)["items"][0]["partitions"]
            doomed_stream = processor.streams[0].stream_id
            assert doomed_stream in {p.get("stream_id") for p in stats}
            doomed_server.process.send_signal(sig)
            doomed_server.process.wait(15)
            with Client(live_server.url, consumer_token) as other:
                other.publish(TYPE, orders(200, "B"))
            wait_for(lambda: len(seen) == 400, timeout=30, what=f"every event: {len(seen)}")
            wait_for(lambda: unconsumed(client, subscription) == 0, timeout=15, what="commits")
            assert processor.streams[0].stream_id != doomed_stream  # it moved on
            assert processor.failure is None
    assert set(seen) == {f"{p}-{i}" for p in "AB" for i in range(200)}
    if sig == signal.SIGTERM:
        # A drain takes the commits of what its sessions sent: nothing comes twice.
        assert errors == []
        assert set(seen.values()) == {1}
        # Closed with `shutdown`, not cut: reconnected at once, to the other server.
        assert not [r for r in retries if "without a close reason" in r], retries


def test_a_reader_resumes_on_the_other_server_without_a_gap_or_a_repeat(
    live_server, doomed_server, consumer_api, consumer_token
):
    create_type(consumer_api, partitions=2)
    got: list[str] = []
    resets: list[Reset] = []
    with Client([doomed_server.url, live_server.url], consumer_token) as client:
        client.publish(TYPE, orders(5))
        reader = client.reader(TYPE, read_from="begin")

        def read() -> None:
            for item in reader:
                if isinstance(item, ReaderBatch):
                    got.extend(e["order_number"] for e in item.events)
                else:
                    resets.append(item)

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        try:
            wait_for(lambda: len(got) == 5, what="the first events")
            doomed_server.process.kill()
            doomed_server.process.wait(15)
            client.publish(TYPE, orders(5, "B"))
            wait_for(lambda: len(got) >= 10, what=f"the events after the kill: {got}")
        finally:
            reader.close()
            thread.join(10)
    assert resets == []
    assert sorted(got) == sorted([f"A-{i}" for i in range(5)] + [f"B-{i}" for i in range(5)])
