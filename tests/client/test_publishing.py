"""Publishing through the client against a real server: metadata filled in, retries of
only what failed, never of a 422, and the background publisher.
"""

from __future__ import annotations

import asyncio

import pytest
from streamsite_client import AsyncClient, Client, PublishRefused, RetryPolicy

from streamsite.processes import free_port
from tests.client.helpers import TYPE, create_type, orders, stored
from tests.client.proxy import faulty_proxy

FAST = RetryPolicy(initial=0.01, maximum=0.05, max_elapsed=10)


def test_it_fills_in_eid_and_occurred_at_and_publishes_in_batches(
    live_server, consumer_api, consumer_token
):
    create_type(consumer_api, partitions=2)
    with faulty_proxy(live_server.url, []) as proxy, Client(proxy.url, consumer_token) as client:
        assert client.publish(TYPE, orders(25), batch_size=10) == 25
        assert [len(eids) for eids in proxy.published] == [10, 10, 5]
        assert len({eid for eids in proxy.published for eid in eids}) == 25
    assert stored(consumer_api) == 25


def test_a_5xx_retries_the_whole_batch_with_the_same_eids(
    live_server, consumer_api, consumer_token
):
    create_type(consumer_api)
    with faulty_proxy(live_server.url, ["503", "503"]) as proxy:
        with Client(proxy.url, consumer_token, retry=FAST) as client:
            assert client.publish(TYPE, orders(4)) == 4
        first, second, third = proxy.published
        assert first == second == third
    assert stored(consumer_api) == 4


def test_a_207_retries_only_the_failed_events(live_server, consumer_api, consumer_token):
    create_type(consumer_api)
    with faulty_proxy(live_server.url, ["partial"]) as proxy:
        with Client(proxy.url, consumer_token, retry=FAST) as client:
            assert client.publish(TYPE, orders(6)) == 6
        first, retry = proxy.published
        assert retry == first[3:]
    assert stored(consumer_api) == 6


def test_a_connection_error_moves_on_to_the_next_server(live_server, consumer_api, consumer_token):
    create_type(consumer_api)
    gone = f"http://127.0.0.1:{free_port()}"
    with Client([gone, live_server.url], consumer_token, retry=FAST) as client:
        assert client.publish(TYPE, orders(3)) == 3
    assert stored(consumer_api) == 3


def test_a_422_is_never_retried_and_names_the_failed_events(
    live_server, consumer_api, consumer_token
):
    create_type(consumer_api)
    events = [*orders(2), {"metadata": {"eid": "3f1c2a0e-8c1b-4d4e-9f7a-0b6e5d4c3b2a"}}]
    with faulty_proxy(live_server.url, []) as proxy, Client(proxy.url, consumer_token) as client:
        with pytest.raises(PublishRefused) as refused:
            client.publish(TYPE, events)
        assert len(proxy.published) == 1
    [failed] = refused.value.failed
    assert (failed.index, failed.eid, failed.status) == (
        2,
        "3f1c2a0e-8c1b-4d4e-9f7a-0b6e5d4c3b2a",
        "failed",
    )
    assert "order_number" in failed.detail
    assert "event 2 (eid 3f1c2a0e" in str(refused.value)
    assert stored(consumer_api) == 0


def test_the_background_publisher_batches_by_size_and_linger(
    live_server, consumer_api, consumer_token
):
    create_type(consumer_api, partitions=2)
    with faulty_proxy(live_server.url, ["503"]) as proxy:
        with Client(proxy.url, consumer_token, retry=FAST) as client:
            publisher = client.publisher(TYPE, batch_size=100, linger=0.5)
            eids = [publisher.send(event) for event in orders(250)]
            publisher.flush()
            assert publisher.published == 250
            eids.append(publisher.send(orders(1, "B")[0]))
            publisher.close()
        refused, *batches = proxy.published
        assert batches[0] == refused  # the 503's batch again, with the same eids
        assert sorted(eid for batch in batches for eid in batch) == sorted(eids)
        assert max(len(eids) for eids in proxy.published) == 100
        assert len(proxy.published) <= 5  # 503, then 100 + 100 + 50, then the last one
    assert stored(consumer_api) == 251


def test_the_async_client_publishes_and_its_publisher_flushes(
    live_server, consumer_api, consumer_token
):
    create_type(consumer_api)

    async def main() -> int:
        async with AsyncClient(live_server.url, consumer_token, retry=FAST) as client:
            count = await client.publish(TYPE, orders(5), batch_size=2)
            async with client.publisher(TYPE, batch_size=50) as publisher:
                for event in orders(120, "B"):
                    await publisher.send(event)
            return count + publisher.published

    assert asyncio.run(main()) == 125
    assert stored(consumer_api) == 125
