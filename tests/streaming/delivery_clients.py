"""The simulated clients of the model-based tests (`tests/streaming/delivery_world.py`): each keeps
the batches its session sent it, per partition, until it commits or acks them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from events.core.framing import Batch
from events.streaming.ordered_session import OrderedSession
from tests.streaming.delivery_model import Batches


@dataclass
class Client:
    """A session and its client: the batches it received, per partition, in order."""

    name: str
    session: OrderedSession
    batches: dict[int, Batches] = field(default_factory=dict)  # not committed yet
    marked: dict[int, Batches] = field(default_factory=dict)  # marked sent, never written
    crashing: bool = False  # its next write fails: marked sent, never received
    # Every batch in the order the session sent it: (partition, offsets, written).
    sent: list[tuple[int, list[str], bool]] = field(default_factory=list)

    async def receive(self, out: Sequence[Batch]) -> None:
        into = self.marked if self.crashing else self.batches
        for batch in out:
            if batch.events:
                offsets = [orjson.loads(event)["offset"] for event in batch.events]
                into.setdefault(batch.partition, []).append(offsets)
                self.sent.append((batch.partition, offsets, not self.crashing))
        if self.crashing:
            raise ConnectionError("the server process died mid-write")

    def take_batches(self) -> dict[int, Batches]:
        """What it received and did not commit, and what was marked sent: its time ends."""
        out = {
            p: self.batches.get(p, []) + self.marked.get(p, [])
            for p in {*self.batches, *self.marked}
        }
        self.batches, self.marked = {}, {}
        return out


async def forget(client: Client) -> None:
    """A session that ends without leaving: it watches nothing more."""
    for owned in list(client.session._owned.values()):
        client.session._unwatch(owned)
    client.session._owned.clear()
