"""Offsets and cursors, as plain functions."""

from __future__ import annotations

import pytest

from events.core.offsets import (
    BEGIN,
    CursorError,
    format_offset,
    parse_cursor,
    parse_offset,
    previous_offset,
)


def test_offsets_compare_as_number_pairs_not_strings():
    assert parse_offset("9-0") < parse_offset("10-0")
    assert parse_offset("10-2") < parse_offset("10-10")
    assert parse_offset(BEGIN) < parse_offset("0-1")


@pytest.mark.parametrize(
    "offset", ["", "1", "1-", "-1-0", "01-0", "1-0-0", "x-1", None, 5, f"{2**64}-0"]
)
def test_malformed_offsets_are_refused(offset):
    with pytest.raises(CursorError):
        parse_offset(offset)


def test_format_is_the_inverse_of_parse():
    for offset in (BEGIN, "0-1", "1795252632832-7"):
        assert format_offset(parse_offset(offset)) == offset


def test_a_cursor_names_a_known_partition():
    partitions = {"order.created": 2}
    cursor = parse_cursor(
        {"event_type": "order.created", "partition": "1", "offset": "5-0"}, partitions
    )
    assert (cursor.event_type, cursor.partition, cursor.position) == ("order.created", 1, (5, 0))
    for bad in (
        {"event_type": "other", "partition": "0", "offset": BEGIN},
        {"event_type": "order.created", "partition": "2", "offset": BEGIN},
        {"event_type": "order.created", "partition": 0, "offset": BEGIN},
        "not an object",
    ):
        with pytest.raises(CursorError):
            parse_cursor(bad, partitions)


def test_previous_offset_steps_back_over_sequence_and_milliseconds():
    assert previous_offset("5-3") == "5-2"
    assert previous_offset("5-0") == f"4-{2**64 - 1}"
    assert previous_offset("0-0") == "BEGIN"
