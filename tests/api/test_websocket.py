"""Acks on the WebSocket, end to end over a real Daphne: a shared subscription's session
acks its events with `{"ack": [event, ...]}` on its own socket and is answered per event;
what is malformed, or sent on an ordered subscription's socket, gets a problem back and
the socket stays open. Two tests drive the consumer in this process instead, for what only
this process can arrange: Redis away for the ack, the consumer cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import websockets
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import path

from events.api.consumers import SubscriptionSocket
from events.store.connections import redis_client
from events.store.keys import sessions_key
from streamsite.processes import free_port
from tests.helpers import log_key, subscribe_over_api
from tests.live import numbers, publish

REPLY_SECONDS = 10.0  # the deadline for any one frame we wait for


class Socket:
    """One WebSocket session of a subscription. Batches are kept in arrival order while a
    test waits for the reply to what it sent, so none is lost between the two.
    """

    def __init__(self, connection: websockets.ClientConnection) -> None:
        self.connection = connection
        self.batches: list[dict[str, Any]] = []
        self._taken = 0  # events already handed out by `events()`

    async def _frame(self) -> dict[str, Any]:
        frame: dict[str, Any] = orjson.loads(
            await asyncio.wait_for(self.connection.recv(), REPLY_SECONDS)
        )
        if "cursor" in frame:
            self.batches.append(frame)
        return frame

    async def events(self, count: int) -> list[dict[str, Any]]:
        """The next `count` events delivered, each with the ack item naming it."""
        while len(self._delivered()) < self._taken + count:
            await self._frame()
        taken = self._delivered()[self._taken : self._taken + count]
        self._taken += count
        return taken

    def _delivered(self) -> list[dict[str, Any]]:
        out = []
        for batch in self.batches:
            cursor, events = batch["cursor"], batch.get("events", [])
            # An ordered batch has no offsets: its events name nothing to ack.
            for event, offset in zip(
                events, batch.get("offsets") or [None] * len(events), strict=True
            ):
                item = {
                    "event_type": cursor["event_type"],
                    "partition": cursor["partition"],
                    "offset": offset,
                }
                out.append({**event, "_ack": item})
        return out

    async def send(self, message: Any) -> dict[str, Any]:
        """Send `message` (JSON unless bytes or str) and return the reply to it: the next
        frame that is not a batch.
        """
        if isinstance(message, bytes | str):
            await self.connection.send(message)
        else:
            await self.connection.send(orjson.dumps(message).decode())
        while "cursor" in (frame := await self._frame()):
            pass
        return frame


@contextlib.asynccontextmanager
async def connect(url: str, token: str, subscription: str, **params: Any) -> AsyncIterator[Socket]:
    query = "&".join(f"{k}={v}" for k, v in {"batch_flush_timeout": 1, **params}.items())
    ws_url = url.replace("http://", "ws://") + f"/ws/subscriptions/{subscription}?{query}"
    async with websockets.connect(
        ws_url, additional_headers={"Authorization": f"Bearer {token}"}
    ) as connection:
        yield Socket(connection)


def ack_items(events: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [event["_ack"] for event in events]


def pending(log: str, subscription: str) -> set[str]:
    """The offsets of the log (a partition's stream) still pending in the subscription's
    group.
    """
    entries = redis_client().xpending_range(log, subscription, "-", "+", 100)
    return {entry["message_id"].decode() for entry in entries}


def results(reply: dict[str, Any]) -> list[str]:
    return [item["result"] for item in reply["ack"]["items"]]


def test_a_shared_session_acks_its_events_on_the_socket_and_they_leave_the_pending_list(
    consumer_api, live_server, consumer_token
):
    subscription = subscribe_over_api(consumer_api, mode="shared")
    sent = publish(consumer_api, 6)
    log = log_key("order.created", 0)

    async def scenario() -> tuple[Any, ...]:
        async with connect(
            live_server.url, consumer_token, subscription, max_uncommitted_events=3
        ) as socket:
            first = await socket.events(3)
            held = pending(log, subscription)
            reply = await socket.send({"ack": ack_items(first)})
            # The ack frees the session's window: the other three come without waiting
            # for the ack timeout (30 s).
            second = await socket.events(3)
            left = pending(log, subscription)
            return first, held, reply, second, left

    first, held, reply, second, left = asyncio.run(scenario())
    first_offsets = {item["offset"] for item in ack_items(first)}
    assert numbers(first) == sent[:3]
    assert first_offsets <= held
    assert reply == {"ack": {"items": [{**item, "result": "acked"} for item in ack_items(first)]}}
    assert numbers(second) == sent[3:]
    assert not first_offsets & left
    assert {item["offset"] for item in ack_items(second)} <= left
    again = consumer_api.post(
        f"/api/subscriptions/{subscription}/acks", json={"items": ack_items(first)}
    )
    assert again.status_code == 200
    assert {item["result"] for item in again.json()["items"]} == {"not_pending"}


def test_an_event_acked_twice_or_never_delivered_is_not_pending(
    consumer_api, live_server, consumer_token
):
    subscription = subscribe_over_api(consumer_api, mode="shared")
    publish(consumer_api, 2)
    log = log_key("order.created", 0)

    async def scenario() -> tuple[Any, ...]:
        async with connect(live_server.url, consumer_token, subscription, batch_limit=2) as socket:
            first, second = ack_items(await socket.events(2))
            never = {**first, "offset": "1-0"}  # before every event: nobody was given it
            both = await socket.send({"ack": [first, first, never]})
            again = await socket.send({"ack": [first, second]})
            return both, again

    both, again = asyncio.run(scenario())
    assert results(both) == ["acked", "not_pending", "not_pending"]
    assert results(again) == ["not_pending", "acked"]
    assert pending(log, subscription) == set()


def test_a_malformed_ack_is_answered_with_a_problem_and_acks_nothing(
    consumer_api, live_server, consumer_token
):
    subscription = subscribe_over_api(consumer_api, mode="shared")
    publish(consumer_api, 1)
    log = log_key("order.created", 0)

    async def scenario() -> tuple[Any, ...]:
        async with connect(live_server.url, consumer_token, subscription) as socket:
            (item,) = ack_items(await socket.events(1))
            bad = {**item, "partition": "7"}
            replies = [
                await socket.send("{not json"),
                await socket.send(b"\xff"),
                await socket.send([item]),
                await socket.send({"hello": [item]}),
                await socket.send({"ack": []}),
                await socket.send({"ack": {"items": [item]}}),
                await socket.send({"ack": [item, bad]}),  # checked before any is acked
                await socket.send({"ack": [{**item, "offset": "soon"}]}),
            ]
            held = pending(log, subscription)
            last = await socket.send({"ack": [item]})  # the socket is still open
            return item, replies, held, last

    item, replies, held, last = asyncio.run(scenario())
    problems = [reply.get("problem", reply) for reply in replies]
    assert [p.get("status") for p in problems] == [400, 400, 422, 422, 422, 422, 422, 422]
    assert "Not valid JSON" in problems[0]["detail"]
    assert '{"ack": [event, ...]}' in problems[2]["detail"]
    assert '{"ack": [event, ...]}' in problems[5]["detail"]
    assert "no partition 7" in problems[6]["detail"]
    assert "'soon'" in problems[7]["detail"]
    assert item["offset"] in held
    assert results(last) == ["acked"]


def test_an_ack_on_an_ordered_subscriptions_socket_is_refused_and_a_commit_on_a_shared_one(
    consumer_api, live_server, consumer_token
):
    ordered = subscribe_over_api(consumer_api)
    body = {
        "owning_application": "shop",
        "event_types": ["order.created"],
        "mode": "shared",
        "consumer_group": "sink",
    }
    response = consumer_api.post("/api/subscriptions", json=body)
    assert response.status_code == 201, response.text
    shared = response.json()["id"]
    publish(consumer_api, 1)

    async def scenario() -> tuple[Any, ...]:
        async with connect(live_server.url, consumer_token, ordered) as socket:
            await socket.events(1)
            (batch,) = [b for b in socket.batches if b.get("events")]
            assert "offsets" not in batch  # an ordered batch names no event to ack
            item = {**batch["cursor"]}
            del item["cursor_token"]
            refused_ack = await socket.send({"ack": [item]})
            committed = await socket.send({"commit": [batch["cursor"]]})
        async with connect(live_server.url, consumer_token, shared) as socket:
            (event,) = await socket.events(1)
            refused_commit = await socket.send({"commit": [event["_ack"]]})
            acked = await socket.send({"ack": [event["_ack"]]})
        return refused_ack, committed, refused_commit, acked

    refused_ack, committed, refused_commit, acked = asyncio.run(scenario())
    assert refused_ack["problem"]["status"] == 422
    assert "commits cursors" in refused_ack["problem"]["detail"]
    assert committed["commit"]["items"][0]["result"] == "committed"
    assert refused_commit["problem"]["status"] == 422
    assert "acknowledge" in refused_commit["problem"]["detail"]
    assert results(acked) == ["acked"]


def communicator(subscription: str, token: str) -> WebsocketCommunicator:
    """The socket consumer in this process, driven without a server."""
    application = URLRouter(
        [path("ws/subscriptions/<str:subscription_id>", SubscriptionSocket.as_asgi())]
    )
    return WebsocketCommunicator(
        application,
        f"/ws/subscriptions/{subscription}?batch_flush_timeout=1",
        headers=[(b"authorization", f"Bearer {token}".encode())],
    )


def test_an_ack_while_redis_is_away_is_answered_503_and_the_socket_stays_open(
    consumer_api, live_server, consumer_token, settings
):
    subscription = subscribe_over_api(consumer_api, mode="shared")
    publish(consumer_api, 1)
    redis_url = settings.REDIS_URL

    async def scenario() -> tuple[Any, ...]:
        socket = communicator(subscription, consumer_token)
        connected, _ = await socket.connect(REPLY_SECONDS)
        assert connected
        while "offsets" not in (batch := await socket.receive_json_from(REPLY_SECONDS)):
            pass  # keep-alives
        item = {**batch["cursor"], "offset": batch["offsets"][0]}
        del item["cursor_token"]
        # The session keeps the connection it has; the ack asks for one to a port where
        # nothing listens.
        settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
        await socket.send_json_to({"ack": [item]})
        refused = await socket.receive_json_from(REPLY_SECONDS)
        settings.REDIS_URL = redis_url
        await socket.send_json_to({"ack": [item]})
        while "cursor" in (acked := await socket.receive_json_from(REPLY_SECONDS)):
            pass
        await socket.disconnect()
        return refused, acked

    refused, acked = asyncio.run(scenario())
    assert refused["problem"]["status"] == 503
    assert "Redis" in refused["problem"]["detail"]
    assert results(acked) == ["acked"]


def test_a_cancelled_socket_consumer_takes_its_session_out_of_the_subscription(
    consumer_api, live_server, consumer_token
):
    subscription = subscribe_over_api(consumer_api, mode="shared")
    live = sessions_key(subscription)

    async def scenario() -> tuple[int, int]:
        socket = communicator(subscription, consumer_token)
        connected, _ = await socket.connect(REPLY_SECONDS)
        assert connected
        before = redis_client().zcard(live)
        # What the server does to an application that does not end after the client left.
        socket.future.cancel()
        await asyncio.wait({socket.future}, timeout=REPLY_SECONDS)
        assert socket.future.cancelled()
        return before, redis_client().zcard(live)

    # Once the consumer has ended, its session has left (not lapsed: a heartbeat would
    # keep it live for good).
    before, after = asyncio.run(scenario())
    assert (before, after) == (1, 0)
