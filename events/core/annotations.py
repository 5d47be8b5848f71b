"""Nakadi's descriptive fields of an event type: `annotations` and `labels` (string→string
maps) and `event_owner_selector` ({type, name, value}); and of a subscription: its
`annotations`, two of which (Nakadi's dead-letter annotations) set how it delivers. Pure;
checked for shape, then kept and returned as sent.
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


# Nakadi's dead-letter annotations of a subscription (its DeadLetterAnnotationValidator):
# after `MAX_EVENT_SEND_COUNT` failed sends, an event goes by the `UNPROCESSABLE_EVENT_POLICY`.
MAX_EVENT_SEND_COUNT = "nakadi.zalando.org/subscription-max-event-send-count"
UNPROCESSABLE_EVENT_POLICY = "nakadi.zalando.org/subscription-unprocessable-event-policy"
# Nakadi's policy names -> Streamsite's `unprocessable_event_policy` values.
POLICIES = {"DEAD_LETTER_QUEUE": "dead_letter", "SKIP_EVENT": "skip"}


def delivery_settings(annotations: dict[str, str], limit: int) -> dict[str, int | str]:
    """What a subscription's annotations set: `max_deliveries` (from the send count, an
    integer from 1 to `limit` written as a string, as Nakadi's annotation values are) and
    `unprocessable_event_policy`; only those the annotations name. 422 for another value.
    """
    settings: dict[str, int | str] = {}
    count = annotations.get(MAX_EVENT_SEND_COUNT)
    if count is not None:
        if not (count.isascii() and count.isdigit() and 1 <= int(count) <= limit):
            raise Problem(
                422,
                f'Annotation "{MAX_EVENT_SEND_COUNT}" must be an integer from 1 to {limit}, '
                f'as a string; got "{count}".',
            )
        settings["max_deliveries"] = int(count)
    policy = annotations.get(UNPROCESSABLE_EVENT_POLICY)
    if policy is not None:
        if policy not in POLICIES:
            raise Problem(
                422,
                f'Annotation "{UNPROCESSABLE_EVENT_POLICY}" must be one of: '
                f'{", ".join(POLICIES)}; got "{policy}".',
            )
        settings["unprocessable_event_policy"] = POLICIES[policy]
    return settings
