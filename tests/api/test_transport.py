"""The Daphne side of a request (events/api/transport.py): the `Mailbox` that replaces
Daphne's queue for a long-lived request; and the readers' route (events/api/routing.py).
The paths through a real Daphne are in tests/api/test_readers.py.
"""

from __future__ import annotations

import asyncio

import pytest

from events.api.routing import reader_route
from events.api.transport import Mailbox

pytestmark = pytest.mark.no_redis


def test_a_mailbox_hands_over_messages_in_order_whether_they_came_before_or_after_get() -> None:
    async def scenario() -> list[str]:
        mailbox = Mailbox()
        mailbox.put_nowait({"type": "http.request"})
        mailbox.put_nowait({"type": "a"})
        got = [(await mailbox.get())["type"], (await mailbox.get())["type"]]
        waiting = asyncio.ensure_future(mailbox.get())
        await asyncio.sleep(0)  # let it wait: the message must reach the waiting receiver
        assert not waiting.done()
        mailbox.put_nowait({"type": "http.disconnect"})
        got.append((await waiting)["type"])
        return got

    assert asyncio.run(scenario()) == ["http.request", "a", "http.disconnect"]


def test_a_message_for_a_receiver_that_gave_up_waits_for_the_next() -> None:
    async def scenario() -> str:
        mailbox = Mailbox()
        waiting = asyncio.ensure_future(mailbox.get())
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        mailbox.put_nowait({"type": "http.disconnect"})
        return str((await mailbox.get())["type"])

    assert asyncio.run(scenario()) == "http.disconnect"


def test_a_mailbox_has_one_receiver_at_a_time() -> None:
    async def scenario() -> None:
        mailbox = Mailbox()
        first = asyncio.ensure_future(mailbox.get())
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError):
            await mailbox.get()
        first.cancel()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/api/events", {}),
        ("/api/event-types/orders.placed/events", {"name": "orders.placed"}),
        ("/api/event-types//events", None),
        ("/api/event-types/events", None),
        ("/api/event-types/a/b/events", None),
        ("/api/event-types/orders/partitions", None),
        ("/api/subscriptions/x/events", None),
        ("/api/events/", None),
    ],
)
def test_the_readers_route_is_exactly_the_readers_paths(
    path: str, route: dict[str, str] | None
) -> None:
    assert reader_route(path) == route
