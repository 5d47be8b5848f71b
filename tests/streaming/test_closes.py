"""Each session's end is recorded for the dashboard (events/streaming/closes.py), through
a real server: the reason a stream closed with, and `disconnected` when its client left.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
import redis.asyncio as aioredis
from django.conf import settings

from events.store import closes
from events.store.connections import redis_client
from events.streaming.closes import recorded as recorded_run
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


class Failing:
    """What `recorded` needs of a session: its id, plan and Redis client."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.id = "session-x"
        self.plan = SimpleNamespace(subscription="sub-1")
        self._client = client

    @recorded_run
    async def run(self, send) -> str:
        raise RuntimeError("a bug")


def test_a_session_that_fails_is_recorded_with_the_error_and_the_error_goes_on():
    async def main() -> None:
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        try:
            with pytest.raises(RuntimeError):
                await Failing(client).run(None)
        finally:
            await client.aclose()

    asyncio.run(main())
    [close] = recorded("sub-1")
    assert (close["session"], close["reason"]) == ("session-x", "error: RuntimeError")
