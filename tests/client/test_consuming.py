"""Consuming through the client against a real server: a stream's batches and commits,
processors over several streams (sync and asyncio), keep-alive commits, shared acks.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

from streamsite_client import AsyncClient, Batch, Client, StreamOptions

from tests.client.helpers import TYPE, orders, subscribe, wait_for


def numbers(batches: list[Batch]) -> list[str]:
    return [e["order_number"] for b in batches for e in b.events]


def unconsumed(client: Client, subscription: str) -> int:
    partitions = client.stats(subscription)["items"][0]["partitions"]
    return sum(p.get("unconsumed_events", 0) for p in partitions)


def test_a_stream_gives_batches_and_commits_them(live_server, consumer_api, consumer_token):
    subscription = subscribe(consumer_api)
    connected = threading.Event()
    options = StreamOptions(batch_limit=2, flush_timeout=1, notify_ok=connected.set)
    with Client(live_server.url, consumer_token) as client:
        client.publish(TYPE, orders(5))
        with client.stream(subscription, options) as stream:
            got = [stream.next_events(timeout=10) for _ in range(3)]
            assert connected.is_set()
            assert numbers(got) == [f"A-{i}" for i in range(5)]
            assert [len(b.events) for b in got] == [2, 2, 1]
            assert {b.stream_id for b in got} == {stream.stream_id}
            [result] = stream.commit(*got)  # the last cursor of the partition only
            assert result["result"] == "committed"
            assert result["cursor"]["offset"] == got[-1].cursor["offset"]
            assert unconsumed(client, subscription) == 0


def test_a_processor_over_several_streams_handles_every_event_exactly_once(
    live_server, consumer_api, consumer_token
):
    subscription = subscribe(consumer_api, partitions=4)
    seen: Counter[str] = Counter()
    lock = threading.Lock()
    errors: list[Exception] = []

    def handler(batch: Batch) -> None:
        with lock:
            seen.update(e["order_number"] for e in batch.events)

    options = StreamOptions(batch_limit=20, flush_timeout=1, max_uncommitted_events=40)
    with Client(live_server.url, consumer_token) as client:
        client.publish(TYPE, orders(300))
        with client.processor(
            subscription, handler, streams=3, options=options, on_error=errors.append
        ) as processor:
            client.publish(TYPE, orders(300, "B"))
            wait_for(lambda: sum(seen.values()) >= 600, what="600 events handled")
            wait_for(lambda: unconsumed(client, subscription) == 0, what="everything committed")
            owners = {
                p.get("stream_id") for p in client.stats(subscription)["items"][0]["partitions"]
            }
            assert len(owners) == 3, owners  # the partitions were shared
            assert len({s.stream_id for s in processor.streams}) == 3
    assert set(seen.values()) == {1}
    assert len(seen) == 600
    assert errors == []


def test_a_failing_handler_reopens_the_stream_and_gets_the_batch_again(
    live_server, consumer_api, consumer_token
):
    subscription = subscribe(consumer_api)
    handled: list[list[str]] = []
    fails = [True]

    def handler(batch: Batch) -> None:
        handled.append([e["order_number"] for e in batch.events])
        if fails.pop(0) if fails else False:
            raise RuntimeError("the database is down")

    options = StreamOptions(batch_limit=10, flush_timeout=1, initial_retry_interval=0.05)
    with Client(live_server.url, consumer_token) as client:
        client.publish(TYPE, orders(3))
        with client.processor(subscription, handler, options=options) as processor:
            wait_for(lambda: unconsumed(client, subscription) == 0, what="committed")
            first_stream = processor.streams[0]
    # Once failed, then again (the server sends events charged a failure one by one).
    assert handled[0] == ["A-0", "A-1", "A-2"]
    assert [n for batch in handled[1:] for n in batch] == ["A-0", "A-1", "A-2"]
    assert len(first_stream._abandoned) == 1


def test_keep_alive_commits_keep_a_long_handler_s_session_past_its_commit_timeout(
    live_server, consumer_api, consumer_token
):
    subscription = subscribe(consumer_api, commit_timeout=1)  # the processor asks for it
    errors: list[Exception] = []
    done = threading.Event()
    stream_ids: list[str] = []

    def handler(batch: Batch) -> None:
        stream_ids.append(batch.stream_id)
        if len(stream_ids) == 1:
            # Working for 2.2 commit timeouts: the handler's own pace, not a wait on
            # another party.
            threading.Event().wait(2.2)
        done.set()

    options = StreamOptions(flush_timeout=1)
    with Client(live_server.url, consumer_token) as client:
        client.publish(TYPE, orders(1))
        with client.processor(subscription, handler, options=options, on_error=errors.append) as p:
            wait_for(done.is_set, what="the handler to end")
            wait_for(lambda: unconsumed(client, subscription) == 0, what="committed")
            assert p.streams[0].stream_id == stream_ids[0]  # the same session throughout
    assert errors == []
    assert len(stream_ids) == 1  # delivered once: the session did not time out


def test_a_processor_acks_each_event_of_a_shared_subscription(
    live_server, consumer_api, consumer_token
):
    subscription = subscribe(consumer_api, partitions=2, mode="shared")
    seen: Counter[str] = Counter()
    errors: list[Exception] = []
    options = StreamOptions(batch_limit=5, flush_timeout=1)
    with Client(live_server.url, consumer_token) as client:
        client.publish(TYPE, orders(30))

        def handler(batch: Batch) -> None:
            assert len(batch.offsets) == len(batch.events)
            seen.update(e["order_number"] for e in batch.events)

        with client.processor(
            subscription, handler, streams=2, options=options, on_error=errors.append
        ):
            wait_for(lambda: sum(seen.values()) >= 30, what="30 events")
        # Unacked events would go to the next session at once: it gets a keep-alive first.
        with client.stream(subscription, StreamOptions(flush_timeout=1)) as stream:
            first = stream.next_events(timeout=5, keep_alives=True)
            assert first.events == []
    assert set(seen.values()) == {1}
    assert len(seen) == 30
    assert errors == []


def test_the_async_processor_handles_every_event_once_keeping_a_slow_handler_alive(
    live_server, consumer_api, consumer_token
):
    subscription = subscribe(consumer_api, partitions=2, commit_timeout=1)
    seen: Counter[str] = Counter()

    async def main() -> None:
        async with AsyncClient(live_server.url, consumer_token) as client:
            await client.publish(TYPE, orders(100))

            async def handler(batch: Batch) -> None:
                if not seen:
                    await asyncio.sleep(2.2)  # two commit timeouts of work: keep-alives
                seen.update(e["order_number"] for e in batch.events)

            options = StreamOptions(batch_limit=10, flush_timeout=1)
            async with client.processor(subscription, handler, streams=2, options=options):
                async with asyncio.timeout(15):
                    while True:
                        stats = await client.stats(subscription)
                        parts = stats["items"][0]["partitions"]
                        if sum(seen.values()) >= 100 and not any(
                            p.get("unconsumed_events") for p in parts
                        ):
                            break
                        await asyncio.sleep(0.05)

    asyncio.run(main())
    assert set(seen.values()) == {1}
    assert len(seen) == 100


def test_an_async_stream_gives_batches_and_commits_them(live_server, consumer_api, consumer_token):
    subscription = subscribe(consumer_api)

    async def main() -> list[str]:
        async with AsyncClient(live_server.url, consumer_token) as client:
            await client.publish(TYPE, orders(3))
            options = StreamOptions(batch_limit=10, flush_timeout=1)
            async with client.stream(subscription, options) as stream:
                batch = await stream.next_events(timeout=10)
                [result] = await stream.commit(batch)
                assert result["result"] == "committed"
                return [e["order_number"] for e in batch.events]

    assert asyncio.run(main()) == ["A-0", "A-1", "A-2"]
