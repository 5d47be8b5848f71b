"""The client's pure parts, without a server: backoff, metadata, answers sorted, SSE, close
reasons, the CLI's input and tables.
"""

from __future__ import annotations

import io

import pytest
from streamsite_client.backoff import Backoff
from streamsite_client.commits import request_of
from streamsite_client.inputs import NotJson, read_events
from streamsite_client.options import After, StreamOptions, after_close
from streamsite_client.publishing import Pending, judge, prepare
from streamsite_client.terminal import Progress, table
from streamsite_client.wire import Batch, Reset, SSEDecoder, reader_message

pytestmark = pytest.mark.no_redis


def test_backoff_grows_to_its_maximum_with_jitter_and_stops_after_max_elapsed():
    now = [0.0]
    backoff = Backoff(1, 8, jitter=0.5, max_elapsed=20, clock=lambda: now[0], rand=lambda: 1.0)
    delays = []
    for _ in range(5):
        delays.append(backoff.next_delay())
        now[0] += 3
    assert delays == [1.5, 3.0, 6.0, 11.0, 8.0]  # cut to what is left of the 20 s
    now[0] = 20
    assert backoff.next_delay() is None
    backoff.reset()
    assert backoff.next_delay() == 1.5


def test_prepare_fills_in_eid_and_occurred_at_only_where_missing():
    given = {"metadata": {"eid": "e"}, "x": 1}
    filled = prepare(given)
    assert filled["metadata"]["eid"] == "e"
    assert filled["metadata"]["occurred_at"].endswith("Z")
    assert given == {"metadata": {"eid": "e"}, "x": 1}  # the caller's event is untouched
    assert len(prepare({"metadata": {}})["metadata"]["eid"]) == 36
    assert prepare({"x": 1}) == {"x": 1}  # undefined category: no metadata object


def test_a_207_retries_the_events_not_submitted_and_a_422_names_the_failed_ones():
    pending = Pending.of([{"metadata": {"eid": f"e{i}"}} for i in range(3)], first_index=10)
    items = [
        {"publishing_status": "submitted"},
        {"publishing_status": "failed", "step": "publishing"},
        {"publishing_status": "submitted"},
    ]
    verdict = judge(207, items, pending)
    assert verdict is not None
    assert verdict.stored == 2
    assert [i for i, _ in verdict.retry.indexed] == [11]
    refused = [
        {"publishing_status": "aborted", "step": "validating"},
        {"publishing_status": "failed", "step": "validating", "detail": "bad"},
        {"publishing_status": "aborted", "step": "validating"},
    ]
    verdict = judge(422, refused, pending)
    assert verdict is not None
    assert [(f.index, f.eid, f.detail) for f in verdict.refused] == [(11, "e1", "bad")]
    assert judge(503, None, pending) is None
    assert judge(200, None, pending).stored == 3


def test_the_sse_decoder_reads_batches_resets_and_closes():
    decoder = SSEDecoder()
    lines = [
        "retry: 1000",
        "",
        "event: batch",
        "id: r1.x",
        'data: {"cursor": {"partition": "0"}, "events": [{"a": 1}]}',
        "",
        ": a comment",
        "event: reset",
        'data: {"reason": "trimmed", "partitions": [], "position": "p"}',
        "",
        "event: close",
        'data: {"close_reason": "shutdown"}',
        "",
    ]
    items = [reader_message(m) for m in decoder.feed_all(iter(lines))]
    assert decoder.retry_ms == 1000
    assert items[0].events == [{"a": 1}]
    assert items[0].id == "r1.x"
    assert items[1] == Reset("trimmed", [], "p")
    assert items[2] == "shutdown"


def test_close_reasons_decide_the_reconnect():
    assert after_close("shutdown") is After.RECONNECT_NOW
    assert after_close("rebalance") is After.RECONNECT_NOW
    assert after_close("commit_timeout") is After.BACKOFF
    assert after_close(None) is After.BACKOFF
    assert after_close("subscription_deleted") is After.STOP


def test_stream_options_become_nakadi_s_parameters():
    options = StreamOptions(batch_limit=5, flush_timeout=1.0, commit_timeout=3)
    assert options.params() == {
        "batch_limit": "5",
        "batch_flush_timeout": "1",
        "commit_timeout": "3",
    }
    assert options.keep_alive_interval() == 1.0


def test_a_commit_sends_the_last_cursor_of_each_partition_with_the_batches_stream():
    batches = [
        Batch({"event_type": "t", "partition": p, "offset": o}, [{}], "s1")
        for p, o in [("0", "1-0"), ("1", "2-0"), ("0", "3-0")]
    ]
    stream_id, cursors = request_of(batches, "other")
    assert stream_id == "s1"
    assert sorted((c["partition"], c["offset"]) for c in cursors) == [("0", "3-0"), ("1", "2-0")]


def test_the_input_is_ndjson_or_an_array_and_a_bad_line_is_named():
    assert list(read_events(io.StringIO('\n{"a": 1}\n\n{"a": 2}\n'))) == [
        ("line 2", {"a": 1}),
        ("line 4", {"a": 2}),
    ]
    assert list(read_events(io.StringIO('[{"a": 1},\n {"a": 2}]'))) == [
        ("event 1", {"a": 1}),
        ("event 2", {"a": 2}),
    ]
    events = read_events(io.StringIO('{"a": 1}\nnope\n{"a": 3}\n'))
    assert next(events) == ("line 1", {"a": 1})
    with pytest.raises(NotJson) as bad:
        next(events)
    assert bad.value.line == 2


def test_the_progress_line_shows_count_rate_and_errors_and_tables_align():
    out = io.StringIO()
    progress = Progress(out, total=100)
    progress.update(40, 2, position=50, final=True)
    assert "[" + "#" * 15 + "." * 15 + "]  50% 40 events" in out.getvalue()
    assert out.getvalue().endswith("2 errors\n")
    assert table(["A", "NUM"], [["x", 1], ["long", 100]]).splitlines() == [
        "A     NUM",
        "x       1",
        "long  100",
    ]
