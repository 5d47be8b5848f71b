"""Readers through the client against a real server: every event, resumed with
Last-Event-ID without a gap or a repeat, and resets handed to the caller.
"""

from __future__ import annotations

import asyncio

from streamsite_client import AsyncClient, Client, ReaderBatch, Reset

from tests.client.helpers import TYPE, create_type, orders


def take(reader, count: int) -> list[str]:
    got: list[str] = []
    for item in reader:
        assert isinstance(item, ReaderBatch), item
        got += [e["order_number"] for e in item.events]
        if len(got) >= count:
            break
    return got


def test_a_reader_resumes_after_its_last_event_id(live_server, consumer_api, consumer_token):
    create_type(consumer_api, partitions=2)
    with Client(live_server.url, consumer_token) as client:
        client.publish(TYPE, orders(6))
        first = client.reader(TYPE, read_from="begin")
        assert sorted(take(first, 6)) == [f"A-{i}" for i in range(6)]
        first.close()
        assert first.last_event_id
        client.publish(TYPE, orders(4, "B"))
        again = client.reader(TYPE, read_from="begin", last_event_id=first.last_event_id)
        assert sorted(take(again, 4)) == [f"B-{i}" for i in range(4)]
        again.close()


def test_a_reader_hands_a_reset_to_its_caller(live_server, consumer_api, consumer_token):
    create_type(consumer_api)
    with Client(live_server.url, consumer_token) as client:
        client.publish(TYPE, orders(2))
        reader = client.reader(TYPE, read_from="begin", last_event_id="not-a-position")
        items = iter(reader)
        reset = next(items)
        assert isinstance(reset, Reset)
        assert reset.reason == "invalid_position"
        batch = next(items)
        assert isinstance(batch, ReaderBatch)
        assert [e["order_number"] for e in batch.events][:1] == ["A-0"]
        reader.close()


def test_a_reader_reads_several_types_and_filters_by_topic(
    live_server, consumer_api, consumer_token
):
    create_type(consumer_api)
    events = [{"metadata": {"topic": t}, "order_number": n} for t, n in [("eu", "E"), ("us", "U")]]
    with Client(live_server.url, consumer_token) as client:
        client.publish(TYPE, events)
        reader = client.reader("order.*", read_from="begin", topics=["eu"])
        assert take(reader, 1) == ["E"]
        reader.close()


def test_the_async_reader_reads_from_the_beginning(live_server, consumer_api, consumer_token):
    create_type(consumer_api)

    async def main() -> list[str]:
        async with AsyncClient(live_server.url, consumer_token) as client:
            await client.publish(TYPE, orders(3))
            reader = client.reader(TYPE, read_from="begin")
            got: list[str] = []
            async for item in reader:
                if isinstance(item, ReaderBatch):
                    got += [e["order_number"] for e in item.events]
                if len(got) >= 3:
                    break
            await reader.close()
            return got

    assert asyncio.run(main()) == ["A-0", "A-1", "A-2"]
