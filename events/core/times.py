"""Times as the API writes them."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone


def rfc3339(value: datetime) -> str:
    """A UTC time as the API writes it: RFC 3339 with milliseconds, `Z` for UTC."""
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"  # date, time, fraction
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))"  # the offset
)


def parse_rfc3339(value: str) -> datetime | None:
    """An RFC 3339 date-time with its offset, as OpenAPI's `date-time` allows it (lower-case
    `t` and `z`, any number of fraction digits, a leap second, read as :59); else what
    `datetime.fromisoformat` reads (it may lack a zone). None when neither reads it.
    """
    match = _RFC3339.fullmatch(value)
    if match is None:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    if second > 60:  # 60 is a leap second; nothing is later
        return None
    fraction, zulu, sign, offset_hours, offset_minutes = match.groups()[6:]
    offset = timedelta(0)
    if not zulu:
        offset = timedelta(hours=int(offset_hours), minutes=int(offset_minutes))
        offset = -offset if sign == "-" else offset
    try:
        return datetime(
            year,
            month,
            day,
            hour,
            minute,
            min(second, 59),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=timezone(offset),
        )
    except ValueError:  # a day, hour or offset out of range
        return None
