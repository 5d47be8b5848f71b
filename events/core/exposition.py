"""Prometheus's text exposition format, version 0.0.4: pure functions, no I/O.

https://prometheus.io/docs/instrumenting/exposition_formats/ — each family is a HELP line,
a TYPE line and its samples; label values escape backslash, double quote and newline, HELP
text escapes backslash and newline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = tuple[tuple[str, str], ...]


@dataclass
class Family:
    """One metric: its name (counters end in `_total`), type, help and samples."""

    name: str
    kind: Literal["counter", "gauge"]
    help: str
    samples: list[tuple[Labels, float]] = field(default_factory=list)

    def add(self, value: float, **labels: object) -> None:
        """Add a sample; label values are turned into strings."""
        self.samples.append((tuple((k, str(v)) for k, v in labels.items()), value))


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def render(families: list[Family]) -> str:
    """The exposition of these families, in their order; ends with a newline."""
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for labels, value in family.samples:
            inner = ",".join(f'{name}="{escape_label_value(v)}"' for name, v in labels)
            selector = f"{{{inner}}}" if inner else ""
            lines.append(f"{family.name}{selector} {format_value(value)}")
    return "\n".join(lines) + "\n"
