"""Durations in the admin: typed in readable units ("2d", "1d 12h", "90m"), kept in
milliseconds.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

_DURATION_PART = re.compile(r"(\d+)\s*(ms|d|h|m|s)", re.IGNORECASE)
_UNIT_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}


def format_duration(ms: int) -> str:
    """`ms` in the largest units that divide it exactly, e.g. "2d", "1d 12h", "90s"."""
    if ms <= 0:
        return f"{ms}ms"
    parts = []
    for unit, size in _UNIT_MS.items():
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts)


def parse_duration(text: str) -> int:
    """Milliseconds of "2d", "1d 12h", "90m" or a bare number of milliseconds."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    parts = _DURATION_PART.findall(text)
    if not parts or _DURATION_PART.sub("", text).strip():
        raise ValueError(f"not a duration: {text!r}")
    return sum(int(count) * _UNIT_MS[unit.lower()] for count, unit in parts)


class DurationField(forms.CharField):
    """A duration typed in readable units and cleaned to milliseconds."""

    def prepare_value(self, value: Any) -> Any:
        return format_duration(value) if isinstance(value, int) else value

    def to_python(self, value: Any) -> int | None:  # type: ignore[override]
        text = super().to_python(value)
        if not text:
            return None
        try:
            return parse_duration(text)
        except ValueError:
            raise ValidationError(
                'Give a duration such as "2d", "36h", "1d 12h", "90m" or a number of milliseconds.'
            ) from None
