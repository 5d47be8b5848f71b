"""Nakadi's descriptive fields of an event type: `annotations` and `labels` (string→string
maps) and `event_owner_selector` ({type, name, value}). Pure; checked for shape, then kept
and returned as sent.
"""

from __future__ import annotations

from typing import Any

from events.core.problems import Problem

SELECTOR_TYPES = ("path", "static", "metadata")


def check_string_map(body: dict[str, Any], key: str) -> dict[str, str]:
    """The body's `key` as a map of non-empty string keys to strings; {} when absent or null."""
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in value.items()
    ):
        raise Problem(422, f'Field "{key}" must be an object of strings (name to value).')
    return value


def check_event_owner_selector(body: dict[str, Any]) -> dict[str, str] | None:
    """The body's `event_owner_selector`, None when absent or null; 422 unless it is
    {type, name, value} with `type` one of path, static, metadata (which takes no value)."""
    selector = body.get("event_owner_selector")
    if selector is None:
        return None
    shape = (
        'Field "event_owner_selector" must be {type, name, value}: type one of '
        f"{', '.join(SELECTOR_TYPES)}, name and value non-empty strings."
    )
    if not isinstance(selector, dict) or not set(selector) <= {"type", "name", "value"}:
        raise Problem(422, shape)
    kind, name, value = selector.get("type"), selector.get("name"), selector.get("value")
    if kind not in SELECTOR_TYPES or not isinstance(name, str) or not name:
        raise Problem(422, shape)
    if kind == "metadata":
        if value is not None:
            raise Problem(
                422, "event_owner_selector specifying value for type 'metadata' is not supported."
            )
    elif not isinstance(value, str) or not value:
        raise Problem(422, shape)
    return selector
