"""A server drains before it stops: streams close with `shutdown`, partitions move at once."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import websockets

from events.catalog.clients import create_client
from tests.helpers import business_event, event_type_body, subscribe_over_api
from tests.readers import ReaderClient
from tests.streams import Stream

PATH = "/api/event-types/order.created/events"


def test_sigterm_closes_streams_with_shutdown_and_hands_partitions_over_at_once(
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
            doomed_server.process.send_signal(signal.SIGTERM)
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


def test_a_draining_server_keeps_listening_turns_new_streams_away_and_takes_late_commits(
    live_server, doomed_server
):
    """SIGTERM: the listener stays open while the server drains; readiness is 503 and
    liveness 200; a new NDJSON stream gets 503, a new SSE stream 200 with `event: close`
    (any other status would end an EventSource for good), a new WebSocket code 4503; the
    session that closed with `shutdown` still takes the commit of what it sent, so nothing
    is delivered again, and then its partition moves on at once.
    """
    token = create_client("shop", publish=["order.*"], consume=["order.*"])[1]
    with live_server.client(token) as api, doomed_server.client(token) as doomed:
        subscription = subscribe_over_api(api)
        api.post(PATH, json=[business_event("A-1"), business_event("A-2")])
        leaving = Stream(doomed_server.url, token, subscription, batch_flush_timeout=1)
        try:
            leaving.wait(lambda s: len(s.events) == 2)
            doomed_server.process.send_signal(signal.SIGTERM)
            assert leaving.wait_closed() == "shutdown"
            assert doomed.get("/health/ready").status_code == 503
            assert doomed.get("/health/live").status_code == 200
            refused = doomed.get(f"/api/subscriptions/{subscription}/events")
            assert refused.status_code == 503
            assert refused.headers["Retry-After"]
            sse = doomed.get(
                f"/api/subscriptions/{subscription}/events",
                headers={"Accept": "text/event-stream"},
            )
            assert sse.status_code == 200
            assert "event: close" in sse.text
            assert '"close_reason":"shutdown"' in sse.text
            assert (
                asyncio.run(_websocket_close_code(doomed_server.url, token, subscription)) == 4503
            )
            # The commit of what it was sent, after its stream closed: taken, not refused.
            assert leaving.commit(leaving.last_cursor()).status_code == 204
            assert doomed_server.process.wait(15) == 0
        finally:
            leaving.close()
        api.post(PATH, json=[business_event("A-3")])
        successor = Stream(live_server.url, token, subscription, batch_flush_timeout=1)
        try:
            successor.wait(lambda s: len(s.events) >= 1, timeout=5)
            assert [e["order_number"] for e in successor.events] == ["A-3"]
        finally:
            successor.close()


async def _websocket_close_code(base_url: str, token: str, subscription: str) -> int:
    url = base_url.replace("http://", "ws://") + f"/ws/subscriptions/{subscription}"
    async with websockets.connect(
        url, additional_headers={"Authorization": f"Bearer {token}"}
    ) as socket:
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await socket.recv()
        return socket.close_code or 0
