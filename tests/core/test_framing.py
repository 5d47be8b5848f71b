"""Batch framing: Nakadi's NDJSON lines, SSE messages and close infos, without I/O."""

from __future__ import annotations

import orjson

from events.core import framing
from events.core.framing import Batch


def test_a_batch_splices_stored_events_into_one_json_line():
    batch = Batch("orders", 2, "17-3", "tok", [b'{"a":1}', b'{"b":[2]}'])
    line = framing.ndjson(batch)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert orjson.loads(line) == {
        "cursor": {
            "partition": "2",
            "offset": "17-3",
            "event_type": "orders",
            "cursor_token": "tok",
        },
        "events": [{"a": 1}, {"b": [2]}],
    }


def test_a_keep_alive_batch_has_a_cursor_and_no_events_key():
    line = framing.ndjson(Batch("orders", 0, "BEGIN", "tok"))
    assert orjson.loads(line) == {
        "cursor": {
            "partition": "0",
            "offset": "BEGIN",
            "event_type": "orders",
            "cursor_token": "tok",
        }
    }


def test_sse_batches_carry_the_cursor_token_as_id_and_keep_alives_carry_none():
    data = framing.sse(Batch("orders", 0, "1-0", "tok", [b"{}"]))
    assert data.startswith(b"event: batch\nid: tok\ndata: {")
    assert data.endswith(b"\n\n")
    keep_alive = framing.sse(Batch("orders", 0, "1-0", "tok"))
    assert keep_alive.startswith(b"event: keep-alive\ndata: ")
    assert b"\nid:" not in keep_alive


def test_the_close_says_why_and_has_no_id():
    close = framing.sse_close("stream_limit")
    assert close.startswith(b"event: close\ndata: ")
    assert b"id:" not in close
    payload = orjson.loads(close.split(b"data: ", 1)[1])
    assert payload["close_reason"] == "stream_limit"
    info = framing.close_info("commit_timeout")
    assert info == {"debug": "Stream closed: commit_timeout", "close_reason": "commit_timeout"}


def test_sse_is_chosen_only_when_asked_for():
    assert framing.accepts_sse("text/event-stream")
    assert not framing.accepts_sse("")
    assert not framing.accepts_sse("application/x-json-stream, text/event-stream")
    assert not framing.accepts_sse("application/json")
