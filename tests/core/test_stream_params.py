"""Nakadi's stream parameters, as plain functions."""

from __future__ import annotations

import pytest

from events.core.stream_params import StreamParamError, StreamParams, parse


def test_defaults_are_nakadis():
    assert parse({}) == StreamParams(
        batch_limit=1,
        stream_limit=0,
        batch_flush_timeout=30,
        batch_timespan=0,
        stream_timeout=3600,
        stream_keep_alive_limit=0,
        max_uncommitted_events=10,
        commit_timeout=60,
    )


def test_query_strings_and_json_bodies_read_alike():
    text = parse({"batch_limit": "5", "stream_limit": "50", "batch_flush_timeout": "2"})
    body = parse({"batch_limit": 5, "stream_limit": 50, "batch_flush_timeout": 2})
    fractionless = parse({"batch_limit": 5.0, "stream_limit": 50.0, "batch_flush_timeout": 2.0})
    assert text == body == fractionless
    assert (body.batch_limit, body.stream_limit, body.batch_flush_timeout) == (5, 50, 2)


def test_zero_and_too_long_mean_the_default():
    params = parse({"batch_flush_timeout": 0, "stream_timeout": 99999, "commit_timeout": "0"})
    assert (params.batch_flush_timeout, params.stream_timeout, params.commit_timeout) == (
        30,
        3600,
        60,
    )


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"batch_limit": 0}, "batch_limit"),
        ({"batch_limit": "x"}, "batch_limit"),
        ({"batch_limit": True}, "batch_limit"),
        ({"batch_limit": 1.5}, "batch_limit"),
        ({"stream_limit": 5, "batch_limit": 10, "max_uncommitted_events": 20}, "stream_limit"),
        ({"stream_timeout": 10, "batch_flush_timeout": 20}, "stream_timeout"),
        ({"commit_timeout": 61}, "commit_timeout"),
    ],
)
def test_invalid_values_and_combinations_are_named(values, named):
    with pytest.raises(StreamParamError, match=named):
        parse(values)


def test_unknown_parameters_are_ignored_and_batch_limit_may_exceed_max_uncommitted():
    """As in Nakadi: a batch then holds what max_uncommitted_events allows, flushed on time."""
    params = parse({"batch_limit": 50, "client_extra": "x"})
    assert params.batch_limit == 50
    assert params.max_uncommitted_events == 10
