"""Sessions sharing a subscription, end to end: fair shares, hand-over after commit,
redelivery of what a departed session did not commit, two server processes, WebSocket.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest
import websockets

from tests.helpers import business_event, event_type_body
from tests.streams import Stream


def subscribe(consumer_api, partitions: int) -> str:
    assert (
        consumer_api.post(
            "/api/event-types", json=event_type_body(partitions=partitions)
        ).status_code
        == 201
    )
    body = {"owning_application": "shop", "event_types": ["order.created"], "read_from": "begin"}
    return str(consumer_api.post("/api/subscriptions", json=body).json()["id"])


def publish(consumer_api, count: int, prefix: str = "A") -> list[str]:
    numbers = [f"{prefix}-{i}" for i in range(count)]
    response = consumer_api.post(
        "/api/event-types/order.created/events", json=[business_event(n) for n in numbers]
    )
    assert response.status_code == 200, response.text
    return numbers


def open_stream(streams, server, consumer_token, subscription, **params) -> Stream:
    params.setdefault("batch_flush_timeout", 1)
    params.setdefault("max_uncommitted_events", 100)
    params.setdefault("batch_limit", 100)
    stream = Stream(server.url, consumer_token, subscription, **params)
    streams.append(stream)
    return stream


def owners(consumer_api, subscription: str) -> dict[str, str | None]:
    """Partition → the stream id that owns it now (None when unassigned)."""
    stats = consumer_api.get(f"/api/subscriptions/{subscription}/stats").json()["items"][0][
        "partitions"
    ]
    return {p["partition"]: p.get("stream_id") if p["state"] == "assigned" else None for p in stats}


def wait_for_owners(
    consumer_api, subscription: str, expected, timeout: float = 10.0
) -> dict[str, str | None]:
    from streamsite.processes import wait_until

    found: dict[str, str | None] = {}

    def check() -> bool:
        found.update(owners(consumer_api, subscription))
        return bool(expected(found))

    wait_until(check, timeout=timeout, interval=0.05, message=f"owners to become right: {found}")
    return found


def numbers(events) -> list[str]:
    return [e["order_number"] for e in events]


def test_a_joining_session_gets_its_share_after_the_owner_commits(
    consumer_api, live_server, consumer_token, streams
):
    subscription = subscribe(consumer_api, partitions=2)
    first = open_stream(streams, live_server, consumer_token, subscription)
    wait_for_owners(consumer_api, subscription, lambda o: set(o.values()) == {first.id})
    sent = publish(consumer_api, 20)
    first.wait(lambda s: len(s.events) == 20)
    second = open_stream(streams, live_server, consumer_token, subscription)
    # The owner keeps both partitions while it has uncommitted events...
    assert set(owners(consumer_api, subscription).values()) == {first.id}
    first.commit_all()
    # ...and hands one over once it committed them.
    wait_for_owners(consumer_api, subscription, lambda o: set(o.values()) == {first.id, second.id})
    more = publish(consumer_api, 20, prefix="B")
    second.wait(lambda s: len(s.events) > 0)
    first.wait(lambda s: len(s.events) + len(second.events) == 40)
    assert sorted(numbers(first.events) + numbers(second.events)) == sorted(sent + more)
    assert len({b["cursor"]["partition"] for b in second.data_batches()}) == 1


def test_three_sessions_share_three_partitions_and_a_fourth_gets_409(
    consumer_api, live_server, consumer_token, streams
):
    subscription = subscribe(consumer_api, partitions=3)
    sessions = [open_stream(streams, live_server, consumer_token, subscription) for _ in range(3)]
    found = wait_for_owners(
        consumer_api, subscription, lambda o: set(o.values()) == {s.id for s in sessions}
    )
    assert sorted(found) == ["0", "1", "2"]
    fourth = Stream(live_server.url, consumer_token, subscription)
    streams.append(fourth)
    assert fourth.status == 409
    assert "no partition is left" in fourth.problem["detail"]
    sent = publish(consumer_api, 30)
    for session in sessions:
        session.wait(lambda s: len(s.partitions()) == 1)
    wait = sessions[0]
    wait.wait(lambda _: sum(len(s.events) for s in sessions) == 30)
    assert sorted(n for s in sessions for n in numbers(s.events)) == sorted(sent)


def test_what_a_departed_session_did_not_commit_goes_to_the_next_in_order(
    consumer_api, live_server, consumer_token, streams
):
    subscription = subscribe(consumer_api, partitions=1)
    sent = publish(consumer_api, 10)
    leaver = open_stream(streams, live_server, consumer_token, subscription, batch_limit=4)
    leaver.wait(lambda s: len(s.events) == 10)
    leaver.commit(leaver.data_batches()[0]["cursor"])  # only the first 4
    leaver.close()
    wait_for_owners(consumer_api, subscription, lambda o: o["0"] is None)
    successor = open_stream(streams, live_server, consumer_token, subscription, batch_limit=4)
    successor.wait(lambda s: len(s.events) == 6)
    assert numbers(successor.events) == sent[4:]
    publish(consumer_api, 2, prefix="B")
    successor.wait(lambda s: len(s.events) == 8)
    assert numbers(successor.events)[6:] == ["B-0", "B-1"]


def test_a_session_that_leaves_hands_its_partitions_to_the_others(
    consumer_api, live_server, consumer_token, streams
):
    subscription = subscribe(consumer_api, partitions=2)
    first = open_stream(streams, live_server, consumer_token, subscription)
    second = open_stream(streams, live_server, consumer_token, subscription)
    wait_for_owners(consumer_api, subscription, lambda o: set(o.values()) == {first.id, second.id})
    sent = publish(consumer_api, 20)
    second.wait(lambda s: len(s.events) > 0)
    first.wait(lambda s: len(s.events) + len(second.events) == 20)
    second.close()  # without committing
    wait_for_owners(consumer_api, subscription, lambda o: set(o.values()) == {first.id})
    first.wait(lambda s: len(s.events) == 20)
    assert sorted(numbers(first.events)) == sorted(sent)


def test_sessions_on_two_server_processes_share_one_subscription(
    consumer_api, live_server, other_live_server, consumer_token, streams
):
    subscription = subscribe(consumer_api, partitions=2)
    here = open_stream(streams, live_server, consumer_token, subscription)
    there = open_stream(streams, other_live_server, consumer_token, subscription)
    wait_for_owners(consumer_api, subscription, lambda o: set(o.values()) == {here.id, there.id})
    sent = publish(consumer_api, 30)
    here.wait(lambda s: len(s.events) + len(there.events) == 30)
    assert sorted(numbers(here.events) + numbers(there.events)) == sorted(sent)
    assert here.partitions().isdisjoint(there.partitions())
    # A commit reaches its session through Redis, whichever server takes it.
    cursor = there.last_cursor()
    with other_live_server.client(consumer_token) as other_api:
        other_api_response = other_api.post(
            f"/api/subscriptions/{subscription}/cursors",
            json={"items": [cursor]},
            headers={"X-Nakadi-StreamId": there.id},
        )
    assert other_api_response.status_code == 204
    cursors = {
        c["partition"]: c["offset"]
        for c in consumer_api.get(f"/api/subscriptions/{subscription}/cursors").json()["items"]
    }
    assert cursors[cursor["partition"]] == cursor["offset"]


def test_a_websocket_session_receives_batches_and_commits_on_the_socket(
    consumer_api, live_server, consumer_token
):
    subscription = subscribe(consumer_api, partitions=1)
    sent = publish(consumer_api, 3)
    url = live_server.url.replace("http://", "ws://") + f"/ws/subscriptions/{subscription}"

    async def scenario() -> None:
        async with websockets.connect(
            url + "?batch_limit=3&batch_flush_timeout=1",
            additional_headers={"Authorization": f"Bearer {consumer_token}"},
        ) as socket:
            batch = orjson.loads(await asyncio.wait_for(socket.recv(), 10))
            assert numbers(batch["events"]) == sent
            await socket.send(orjson.dumps({"commit": [batch["cursor"]]}).decode())
            while "commit" not in (
                reply := orjson.loads(await asyncio.wait_for(socket.recv(), 10))
            ):
                assert "events" not in reply  # keep-alives meanwhile
            assert reply["commit"]["items"][0]["result"] == "committed"
            await socket.send(
                orjson.dumps({"commit": [{**batch["cursor"], "offset": "x"}]}).decode()
            )
            while "problem" not in (
                reply := orjson.loads(await asyncio.wait_for(socket.recv(), 10))
            ):
                pass
            assert reply["problem"]["status"] == 422

        async with websockets.connect(
            url, additional_headers={"Authorization": "Bearer nope"}
        ) as socket:
            refused = orjson.loads(await asyncio.wait_for(socket.recv(), 10))
            assert refused["problem"]["status"] == 401
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(socket.recv(), 10)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4401

    asyncio.run(scenario())
    cursors = consumer_api.get(f"/api/subscriptions/{subscription}/cursors").json()["items"]
    assert cursors[0]["offset"] != "BEGIN"
