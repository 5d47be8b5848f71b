"""A server drains before it stops: streams close with `shutdown`, partitions move at once."""

from __future__ import annotations

import signal

from events.catalog.clients import create_client
from tests.helpers import business_event, event_type_body, subscribe_over_api
from tests.readers import ReaderClient
from tests.streams import Stream

PATH = "/api/event-types/order.created/events"


def test_sigusr1_closes_streams_with_shutdown_and_hands_partitions_over_at_once(
    live_server, doomed_server
):
    token = create_client("shop", publish=["order.*"], consume=["order.*"])[1]
    with live_server.client(token) as api:
        subscription = subscribe_over_api(api)
        api.post("/api/event-types/order.created/events", json=[business_event("A-1")])
        leaving = Stream(doomed_server.url, token, subscription, batch_flush_timeout=1)
        try:
            leaving.wait(lambda s: len(s.events) == 1)
            assert leaving.commit(leaving.last_cursor()).status_code == 204
            doomed_server.process.send_signal(signal.SIGUSR1)
            assert leaving.wait_closed() == "shutdown"
            assert doomed_server.process.wait(15) == 0
        finally:
            leaving.close()
        # The lease was released, not left to lapse: a new session owns the partition now.
        api.post("/api/event-types/order.created/events", json=[business_event("A-2")])
        successor = Stream(live_server.url, token, subscription, batch_flush_timeout=1)
        try:
            successor.wait(lambda s: len(s.events) == 1, timeout=3)
            assert [e["order_number"] for e in successor.events] == ["A-2"]
        finally:
            successor.close()


def test_sigusr1_closes_readers_with_shutdown_and_the_process_still_stops(
    live_server, doomed_server
):
    token = create_client("shop", publish=["order.*"], read=["order.*"])[1]
    with live_server.client(token) as api:
        assert api.post("/api/event-types", json=event_type_body()).status_code == 201
        reader = ReaderClient(doomed_server.url, PATH, token=token, read_from="begin")
        try:
            api.post(PATH, json=[business_event("A-1")])
            reader.wait_events(1)
            doomed_server.process.send_signal(signal.SIGUSR1)
            reader.wait_for(lambda: bool(reader.of("close")))
            assert reader.of("close")[0].data["close_reason"] == "shutdown"
            assert reader.of("close")[0].id is None
            assert doomed_server.process.wait(15) == 0
        finally:
            reader.close()
