"""The CLI's input of events: a JSON array or NDJSON, each event with the line it is on."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any, TextIO


class NotJson(Exception):
    """Line `line` of the input is not JSON."""

    def __init__(self, line: int, detail: str) -> None:
        self.line, self.detail = line, detail
        super().__init__(f"line {line} is not JSON ({detail})")


def read_events(source: TextIO) -> Iterator[tuple[str, Any]]:
    """(where, event) for each event of `source`: "line N" of NDJSON, read as it comes, or
    "event N" (from 1) of an array. Raises NotJson at the first line that is not JSON,
    after the events before it.
    """
    lines = iter(source)
    head: list[str] = []
    for line in lines:
        head.append(line)
        if line.strip():
            break
    if head and head[-1].lstrip().startswith("["):
        text = "".join(itertools.chain(head, lines))
        try:
            events = json.loads(text)
        except json.JSONDecodeError as error:
            raise NotJson(error.lineno, error.msg) from None
        if not isinstance(events, list):
            raise NotJson(len(head), "expected an array of events") from None
        for index, event in enumerate(events, start=1):
            yield f"event {index}", event
        return
    for number, line in enumerate(itertools.chain(head, lines), start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as error:
            raise NotJson(number, error.msg) from None
        yield f"line {number}", event
