"""Readers over a real server: every connection gets every event, exact resume by
`Last-Event-ID`, explicit resets, Nakadi's low-level NDJSON stream, and 422 before any byte.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator

import orjson
import pytest

from events.core.offsets import parse_offset
from events.models import EventType
from events.store.connections import redis_client
from events.store.keys import log_key
from tests.helpers import business_event, event_type_body
from tests.readers import ReaderClient

PATH = "/api/event-types/order.created/events"


@pytest.fixture
def readers() -> Iterator[list[ReaderClient]]:
    opened: list[ReaderClient] = []
    yield opened
    for reader in opened:
        reader.close()


@pytest.fixture
def open_reader(live_server, consumer_token, readers):
    def open_(path: str = PATH, **kwargs) -> ReaderClient:
        kwargs.setdefault("token", consumer_token)
        reader = ReaderClient(live_server.url, path, **kwargs)
        readers.append(reader)
        return reader

    return open_


def create(api, name: str = "order.created", partitions: int = 2) -> None:
    response = api.post("/api/event-types", json=event_type_body(name, partitions=partitions))
    assert response.status_code == 201, response.text


def publish(api, numbers: list[str], name: str = "order.created", **fields) -> None:
    events = [business_event(n, **fields) for n in numbers]
    response = api.post(f"/api/event-types/{name}/events", json=events)
    assert response.status_code == 200, response.text


def numbers(events) -> list[str]:
    return [e["order_number"] for e in events]


def by_partition(reader: ReaderClient) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for batch in reader.batches():
        out.setdefault(batch["cursor"]["partition"], []).extend(numbers(batch["events"]))
    return out


def test_every_reader_gets_every_event_from_the_newest_on(consumer_api, open_reader):
    create(consumer_api)
    publish(consumer_api, ["old-1", "old-2"])
    first, second = open_reader(), open_reader()
    assert first.headers["content-type"] == "text/event-stream"
    publish(consumer_api, [f"A-{i}" for i in range(6)])
    for reader in (first, second):
        assert sorted(numbers(reader.wait_events(6))) == [f"A-{i}" for i in range(6)]
        for message in reader.of("batch"):
            assert (message.id or "").startswith("r1.")
            assert message.data["cursor"]["event_type"] == "order.created"


def test_a_reader_resumes_exactly_after_its_last_event_id(consumer_api, open_reader):
    create(consumer_api, partitions=3)
    reader = open_reader(read_from="begin", batch_limit=2)
    publish(consumer_api, [f"A-{i}" for i in range(9)])
    reader.wait_events(9)
    last = reader.last_id()
    reader.close()
    publish(consumer_api, [f"B-{i}" for i in range(7)])
    again = open_reader(headers={"Last-Event-ID": last})
    assert sorted(numbers(again.wait_events(7))) == [f"B-{i}" for i in range(7)]
    publish(consumer_api, ["C-0"])
    again.wait_events(8)
    assert not again.of("reset")
    # The same through the query parameter, for clients that cannot set headers.
    third = open_reader(lastEventId=last)
    assert sorted(numbers(third.wait_events(8))) == sorted([f"B-{i}" for i in range(7)] + ["C-0"])


def test_order_holds_per_partition(consumer_api, open_reader):
    create(consumer_api, partitions=2)
    reader = open_reader(read_from="begin")
    sent = [f"A-{i:03}" for i in range(60)]
    for i in range(0, 60, 10):
        publish(consumer_api, sent[i : i + 10])
    reader.wait_events(60)
    for got in by_partition(reader).values():
        assert got == sorted(got)


def test_keep_alives_carry_no_id(consumer_api, open_reader):
    create(consumer_api)
    reader = open_reader(batch_flush_timeout=1)
    reader.wait_for(lambda: len(reader.of("keep-alive")) >= 1)
    assert all(m.id is None for m in reader.of("keep-alive"))


def test_a_position_that_does_not_parse_is_a_reset_not_an_error(consumer_api, open_reader):
    create(consumer_api)
    publish(consumer_api, ["A-0"])
    reader = open_reader(headers={"Last-Event-ID": "garbage"}, read_from="begin")
    assert reader.status == 200
    reader.wait_for(lambda: bool(reader.of("reset")))
    reset = reader.of("reset")[0]
    assert reset.id is None
    assert reset.data["reason"] == "invalid_position"
    assert reset.data["position"].startswith("r1.")
    assert numbers(reader.wait_events(1)) == ["A-0"]  # from read_from


def test_a_position_of_other_types_is_invalid(consumer_api, open_reader):
    create(consumer_api)
    create(consumer_api, "order.paid")
    other = open_reader("/api/event-types/order.paid/events")
    publish(consumer_api, ["P-0"], name="order.paid")
    other.wait_events(1)
    reader = open_reader(headers={"Last-Event-ID": other.last_id()})
    reader.wait_for(lambda: bool(reader.of("reset")))
    assert reader.of("reset")[0].data["reason"] == "invalid_position"


def test_a_trimmed_position_gets_a_reset_and_continues_at_the_oldest(consumer_api, open_reader):
    create(consumer_api, partitions=1)
    reader = open_reader(read_from="begin")
    publish(consumer_api, ["A-0", "A-1"])
    reader.wait_events(2)
    last = reader.last_id()
    reader.close()
    publish(consumer_api, ["A-2", "A-3", "A-4"])
    row = EventType.objects.get(name="order.created")
    redis_client().xtrim(log_key(row.store_id, 0), maxlen=2, approximate=False)  # A-2 goes
    again = open_reader(headers={"Last-Event-ID": last})
    again.wait_for(lambda: bool(again.of("reset")))
    reset = again.of("reset")[0].data
    assert reset["reason"] == "trimmed"
    assert reset["partitions"] == [{"event_type": "order.created", "partition": "0"}]
    assert numbers(again.wait_events(2)) == ["A-3", "A-4"]


def test_an_event_type_created_again_gets_a_reset(
    consumer_api, open_reader, admin_token, live_server
):
    create(consumer_api, partitions=1)
    reader = open_reader(read_from="begin")
    publish(consumer_api, ["A-0"])
    reader.wait_events(1)
    last = reader.last_id()
    reader.close()
    with live_server.client(admin_token) as admin:
        assert admin.delete("/api/event-types/order.created").status_code == 200
    create(consumer_api, partitions=1)
    publish(consumer_api, ["N-0"])
    again = open_reader(headers={"Last-Event-ID": last})
    again.wait_for(lambda: bool(again.of("reset")))
    assert again.of("reset")[0].data["reason"] == "event_type_recreated"
    assert numbers(again.wait_events(1)) == ["N-0"]


def test_a_redis_that_lost_its_data_gets_a_reset(consumer_api, open_reader):
    create(consumer_api, partitions=1)
    reader = open_reader(read_from="begin")
    publish(consumer_api, ["A-0"])
    reader.wait_events(1)
    last = reader.last_id()
    reader.close()
    epoch = last.split(".")[1]
    position = last.replace(f".{epoch}.", ".lostdataset.", 1)
    publish(consumer_api, ["A-1"])
    again = open_reader(headers={"Last-Event-ID": position})
    again.wait_for(lambda: bool(again.of("reset")))
    assert again.of("reset")[0].data["reason"] == "data_lost"
    assert numbers(again.wait_events(2)) == ["A-0", "A-1"]  # all of what Redis has now


def test_several_types_on_one_connection_by_name_and_glob(consumer_api, open_reader):
    create(consumer_api)
    create(consumer_api, "order.paid")
    reader = open_reader("/api/events", event_type=["order.created", "order.p*"])
    publish(consumer_api, ["C-0"])
    publish(consumer_api, ["P-0"], name="order.paid")
    reader.wait_events(2)
    assert {b["cursor"]["event_type"] for b in reader.batches()} == {"order.created", "order.paid"}
    position = reader.last_id()
    assert "order.created@" in position
    assert "order.paid@" in position


def test_topics_filter_what_a_reader_gets(consumer_api, open_reader):
    create(consumer_api)
    reader = open_reader(read_from="begin", topics="shop.*")
    events = [business_event("A-0"), business_event("A-1"), business_event("A-2")]
    events[0]["metadata"]["topic"] = "shop.eu"
    events[2]["metadata"]["topic"] = "warehouse"
    assert consumer_api.post(PATH, json=events).status_code == 200
    publish(consumer_api, ["A-3"])
    events[0]["metadata"]["eid"] = "7f1d7b5e-5b1a-4e3c-9a51-3a1d5f1e0c01"
    events[0]["order_number"] = "A-4"
    assert consumer_api.post(PATH, json=[events[0]]).status_code == 200
    assert numbers(reader.wait_events(2)) == ["A-0", "A-4"]


def test_stream_limit_ends_the_stream_with_a_close(consumer_api, open_reader):
    create(consumer_api, partitions=1)
    reader = open_reader(read_from="begin", stream_limit=3, batch_limit=2)
    publish(consumer_api, [f"A-{i}" for i in range(5)])
    reader.ended.wait(10)
    assert numbers(reader.events()) == ["A-0", "A-1", "A-2"]
    assert reader.of("close")[-1].data["close_reason"] == "stream_limit"


@pytest.mark.parametrize(
    "params",
    [
        {"read_from": "yesterday"},
        {"read_from": "2026-12-02T10:00:00"},
        {"batch_limit": "0"},
        {"batch_flush_timeout": "10", "stream_timeout": "5"},
        {"stream_limit": "x"},
    ],
)
def test_invalid_parameters_get_422_before_any_byte(consumer_api, open_reader, params):
    create(consumer_api)
    reader = open_reader(**params)
    assert reader.status == 422
    assert reader.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "read_from",
    # RFC 3339 as OpenAPI's date-time has it: lower-case t and z, nanoseconds, a leap second.
    ["2000-01-01t00:00:00.123456789z", "2000-01-01T00:59:60+01:00"],
)
def test_read_from_takes_any_rfc_3339_time(consumer_api, open_reader, read_from):
    create(consumer_api, partitions=1)
    publish(consumer_api, ["A-0"])
    reader = open_reader(read_from=read_from)
    assert numbers(reader.wait_events(1)) == ["A-0"]


def test_reading_needs_the_read_grant(consumer_api, open_reader, stranger_token):
    create(consumer_api)
    assert open_reader(token=stranger_token).status == 403
    assert open_reader(token=None).status == 401
    assert open_reader("/api/event-types/order.nope/events").status == 404
    assert open_reader("/api/events").status == 422


def test_nakadi_low_level_stream_after_cursors(consumer_api, open_reader):
    create(consumer_api, partitions=2)
    first = open_reader(sse=False, read_from="begin")
    publish(consumer_api, [f"A-{i}" for i in range(4)])
    first.wait_events(4)
    batch = first.batches()[0]
    assert set(batch["cursor"]) >= {"partition", "offset"}
    assert first.headers["content-type"] == "application/x-json-stream"
    partition, offset = batch["cursor"]["partition"], batch["cursor"]["offset"]
    cursors = orjson.dumps([{"partition": partition, "offset": offset}]).decode()
    later = open_reader(sse=False, headers={"X-Nakadi-Cursors": cursors})
    publish(consumer_api, [f"B-{i}" for i in range(6)])
    first.wait_events(10)
    expected = [
        n
        for b in first.batches()
        if b["cursor"]["partition"] == partition
        and parse_offset(b["cursor"]["offset"]) > parse_offset(offset)
        for n in numbers(b["events"])
    ]
    later.wait_for(lambda: len(later.events()) >= len(expected))
    assert {b["cursor"]["partition"] for b in later.batches()} == {partition}  # only those named
    assert numbers(later.events()) == expected


def test_nakadi_cursors_that_cannot_be_honoured(consumer_api, open_reader):
    create(consumer_api, partitions=1)
    publish(consumer_api, ["A-0", "A-1"])
    row = EventType.objects.get(name="order.created")
    redis_client().xtrim(log_key(row.store_id, 0), maxlen=1, approximate=False)
    trimmed = orjson.dumps([{"partition": "0", "offset": "BEGIN"}]).decode()
    assert open_reader(sse=False, headers={"X-Nakadi-Cursors": "[{"}).status == 400
    assert open_reader(sse=False, headers={"X-Nakadi-Cursors": trimmed}).status == 412
    missing = orjson.dumps([{"partition": "7", "offset": "BEGIN"}]).decode()
    assert open_reader(sse=False, headers={"X-Nakadi-Cursors": missing}).status == 412


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_reader_that_stops_reading_is_closed_and_the_server_stays_flat(
    consumer_api, live_server, consumer_token
):
    """Daphne buffers whatever is written: without a bound, this client would grow the
    server by everything published (here ~24 MB).
    """
    create(consumer_api, partitions=1)
    port = int(live_server.url.rsplit(":", 1)[1])
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel holds little
    stalled.connect(("127.0.0.1", port))
    stalled.sendall(
        b"GET /api/event-types/order.created/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Accept: text/event-stream\r\nAuthorization: Bearer "
        + consumer_token.encode()
        + b"\r\n\r\n"
    )
    watcher = open_watcher(live_server.url, consumer_token)
    padding = "x" * 40_000

    def publish_rounds(prefix: str) -> int:
        before = rss_bytes(live_server.process.pid)
        for round_ in range(30):
            publish(consumer_api, [f"{prefix}-{round_}-{i}" for i in range(20)], note=padding)
        return rss_bytes(live_server.process.pid) - before

    publish_rounds("warm")  # the server's own allocations for this much traffic
    grown = publish_rounds("A")
    watcher.wait_events(1200, timeout=30)  # everything was stored and served meanwhile
    assert grown < 6_000_000, f"the server grew by {grown} bytes"
    received = b""
    stalled.settimeout(10)
    while not received.endswith(b"0\r\n\r\n"):  # the response's last chunk
        chunk = stalled.recv(1 << 16)
        assert chunk, "the server dropped the connection instead of closing the stream"
        received += chunk
    stalled.close()
    assert b"event: close\ndata: " in received
    assert b'"close_reason":"slow_consumer"' in received
    assert len(received) < 4_000_000


def open_watcher(url: str, token: str) -> ReaderClient:
    return ReaderClient(url, PATH, token=token)


def test_a_glob_stream_takes_a_type_that_matches_since_without_a_reset(consumer_api, open_reader):
    create(consumer_api)
    reader = open_reader("/api/events", event_type="order.*")
    publish(consumer_api, ["C-0"])
    reader.wait_events(1)
    last = reader.last_id()
    reader.close()
    create(consumer_api, "order.paid")
    publish(consumer_api, ["P-0"], name="order.paid")
    publish(consumer_api, ["C-1"])
    again = open_reader("/api/events", event_type="order.*", headers={"Last-Event-ID": last})
    assert sorted(numbers(again.wait_events(2))) == ["C-1", "P-0"]
    assert not again.of("reset")


def test_an_sse_stream_whose_position_could_not_be_sent_back_is_refused(consumer_api, open_reader):
    for i in range(6):
        create(consumer_api, f"order.wide{i}", partitions=64)
    assert open_reader("/api/events", event_type="order.wide*").status == 422
    assert open_reader("/api/events", event_type="order.wide*", sse=False).status == 200


def test_a_burst_of_readers_opening_at_once_all_get_their_stream(
    consumer_api, live_server, consumer_token
):
    """After a restart every browser comes back at once: more streams open together than
    the process has Redis connections, and each waits for one instead of getting a 503
    (an EventSource never retries after one).
    """
    create(consumer_api)
    port = int(live_server.url.rsplit(":", 1)[1])
    request = (
        b"GET /api/event-types/order.created/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Accept: text/event-stream\r\nAuthorization: Bearer "
        + consumer_token.encode()
        + b"\r\n\r\n"
    )

    async def open_one() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        status = await asyncio.wait_for(reader.readline(), 30)
        writer.close()
        return status

    async def burst() -> list[bytes]:
        return await asyncio.gather(*(open_one() for _ in range(300)))

    statuses = asyncio.run(burst())
    assert [s for s in statuses if not s.startswith(b"HTTP/1.1 200")] == []
