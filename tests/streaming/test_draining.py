"""What the drain waits for (events/streaming/draining.py); the drain of a real server is
in tests/end_to_end/test_draining.py.
"""

from __future__ import annotations

import asyncio

import pytest

from events.streaming import draining

pytestmark = pytest.mark.no_redis


def test_the_drain_waits_until_the_last_stream_or_request_under_way_ends() -> None:
    async def scenario() -> None:
        sending = draining.sending()
        assert sending.count == 0
        assert sending.idle().done()  # nothing under way: at once
        with sending:
            with draining.sending():
                idle = sending.idle()
                assert sending.count == 2
            assert not idle.done()  # one still writes
        assert idle.done()
        assert sending.count == 0

    asyncio.run(scenario())


def test_a_stream_that_fails_still_counts_itself_out() -> None:
    async def scenario() -> None:
        sending = draining.sending()

        def stream() -> None:
            with sending:
                raise RuntimeError("the client left")

        sending.__enter__()  # another stream keeps the count above zero meanwhile
        idle = sending.idle()
        with pytest.raises(RuntimeError):
            stream()
        assert sending.count == 1
        sending.__exit__(None, None, None)
        assert idle.done()
        assert sending.count == 0

    asyncio.run(scenario())
