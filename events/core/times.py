"""Times as the API writes them."""

from __future__ import annotations

from datetime import datetime


def rfc3339(value: datetime) -> str:
    """A UTC time as the API writes it: RFC 3339 with milliseconds, `Z` for UTC."""
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
