"""Sessions sharing a subscription, end to end: fair shares, hand-over after commit,
redelivery of what a departed session did not commit, two server processes, WebSocket.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest
import websockets

from tests.live import numbers, open_stream, owners, publish, subscribe, wait_for_owners
from tests.streams import Stream


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
