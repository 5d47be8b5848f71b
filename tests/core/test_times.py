"""Times as the API reads and writes them (events/core/times.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from events.core.times import parse_rfc3339, rfc3339


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-12-02T10:00:00Z", datetime(2026, 12, 2, 10, tzinfo=UTC)),
        ("2026-12-02t10:00:00z", datetime(2026, 12, 2, 10, tzinfo=UTC)),
        ("2026-12-02T10:00:00.5Z", datetime(2026, 12, 2, 10, 0, 0, 500_000, tzinfo=UTC)),
        (
            "2026-12-02T10:00:00.123456789Z",
            datetime(2026, 12, 2, 10, 0, 0, 123_456, tzinfo=UTC),
        ),
        (
            "2026-12-02T10:00:00-01:30",
            datetime(2026, 12, 2, 10, tzinfo=timezone(-timedelta(hours=1, minutes=30))),
        ),
        ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("2026-12-02T10:00+01:00", datetime(2026, 12, 2, 9, tzinfo=UTC)),  # ISO, not RFC 3339
        ("2026-12-02T10:00:00", datetime(2026, 12, 2, 10)),  # no zone: the caller refuses it
    ],
)
def test_it_reads_rfc_3339_times(text, moment):
    assert parse_rfc3339(text) == moment


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "2026-13-02T10:00:00Z",
        "2026-02-30T10:00:00Z",
        "2026-12-02T25:00:00Z",
        "2026-12-02T10:00:61Z",
        "2026-12-02T10:00:99Z",
    ],
)
def test_it_reads_nothing_else(text):
    assert parse_rfc3339(text) is None


def test_it_writes_utc_with_milliseconds():
    assert rfc3339(datetime(2026, 12, 2, 10, 0, 0, 123_456, tzinfo=UTC)) == (
        "2026-12-02T10:00:00.123Z"
    )
