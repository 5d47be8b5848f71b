"""A reader against a real Redis log, without a server: batches cut by `stream_limit`,
catch-up reads that must not join an older read, and trimming that overtakes a reader.
"""

from __future__ import annotations

import asyncio

import orjson

from events.core.stream_params import StreamParams
from events.store.connections import redis_client
from events.store.keys import log_key
from events.store.tails import Chunk, tails
from events.streaming.reader_start import ReadType, Start
from events.streaming.readers import Reader, ReaderOptions

TYPE = ReadType("order.created", "readerlog", 1)
KEY = log_key(TYPE.store_id, 0)


def reader(offset: str, **params) -> Reader:
    options = ReaderOptions(StreamParams(**params), sse=True)
    return Reader([TYPE], Start({(TYPE.name, 0): offset}), "epoch", options)


def add(count: int) -> list[str]:
    return [redis_client().xadd(KEY, {b"e": orjson.dumps({"n": i})}).decode() for i in range(count)]


def messages(out: list[bytes]) -> list[tuple[str, str | None, dict]]:
    found = []
    for block in b"".join(out).decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in fields:
            found.append((fields.get("event", ""), fields.get("id"), orjson.loads(fields["data"])))
    return found


def test_a_batch_cut_short_by_stream_limit_names_its_own_last_event():
    ids = [f"{i}-0" for i in range(2, 12)]
    chunk = Chunk(KEY, "1-0", ids[-1], [(i, orjson.dumps({"id": i})) for i in ids])
    taken = reader("1-0", batch_limit=4, stream_limit=6)
    out: list[bytes] = []

    async def send(data: bytes) -> None:
        out.append(data)

    asyncio.run(taken._send_chunk(chunk, send, lambda: 0))
    batches = [data for event, _, data in messages(out) if event == "batch"]
    assert [[e["id"] for e in b["events"]] for b in batches] == [ids[:4], ids[4:6]]
    assert batches[-1]["cursor"]["offset"] == ids[5]  # not the full cut's last, ids[7]
    assert taken.position().endswith(f"={ids[5]}")
    assert taken.reason == "stream_limit"


def test_a_fresh_range_read_never_joins_one_sent_before_it():
    """A reader that found nothing re-reads up to where the hub delivered; joining a read
    another reader sent before those entries existed would make it skip them.
    """
    first = add(1)[0]

    async def scenario() -> list[str]:
        hub = tails()
        stale: asyncio.Future[Chunk] = asyncio.get_running_loop().create_future()
        hub._ranges[(KEY, first)] = stale  # sent earlier, its answer not in yet
        later = add(2)
        chunk = await hub.read_range(KEY, first, fresh=True)
        assert not stale.done()
        stale.cancel()
        return later + [entry for entry, _ in chunk.entries]

    later_and_read = asyncio.run(scenario())
    assert later_and_read[2:] == later_and_read[:2]


def test_trimming_that_overtakes_a_catching_up_reader_is_announced():
    ids = add(5)
    redis_client().xtrim(KEY, maxlen=2, approximate=False)  # ids[0..2] go
    behind = reader(ids[0], batch_limit=10)
    out: list[bytes] = []

    async def send(data: bytes) -> None:
        out.append(data)

    async def scenario() -> None:
        await behind._catch_up(0, send, lambda: 0)  # announces, and moves on
        await behind._catch_up(0, send, lambda: 0)  # then sends what is left

    asyncio.run(scenario())
    found = messages(out)
    assert found[0][0] == "reset"
    assert found[0][2]["reason"] == "trimmed"
    assert found[0][1] is None
    assert [e for e, _, _ in found[1:]] == ["batch"]
    assert found[1][2]["cursor"]["offset"] == ids[4]
    assert [e["n"] for e in found[1][2]["events"]] == [3, 4]
