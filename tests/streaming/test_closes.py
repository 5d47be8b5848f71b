"""Each session's end is recorded for the dashboard (events/streaming/closes.py), through
a real server: the reason a stream closed with, and `disconnected` when its client left.
"""

from __future__ import annotations

from events.store import closes
from events.store.connections import redis_client
from streamsite.processes import wait_until
from tests.live import open_stream, subscribe


def recorded(subscription: str) -> list[closes.Close]:
    return closes.recent(redis_client(), subscription)


def test_a_session_s_close_reason_and_a_client_that_left_are_recorded(
    live_server, consumer_api, consumer_token, streams
):
    subscription = subscribe(consumer_api, partitions=1)
    timed = open_stream(streams, live_server, consumer_token, subscription, stream_timeout=1)
    assert timed.wait_closed() == "stream_timeout"
    wait_until(lambda: len(recorded(subscription)) == 1, timeout=5, message="a recorded close")
    [close] = recorded(subscription)
    assert (close["session"], close["reason"]) == (timed.id, "stream_timeout")

    left = open_stream(streams, live_server, consumer_token, subscription)
    left.close()
    wait_until(lambda: len(recorded(subscription)) == 2, timeout=5, message="a second close")
    newest, oldest = recorded(subscription)
    assert (newest["session"], newest["reason"]) == (left.id, "disconnected")
    assert oldest == close
    assert newest["at"] >= close["at"]
