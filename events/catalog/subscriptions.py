"""The Nakadi Subscription contract: reading a request body, creating a subscription once
per identity, and rendering it back. Redis is reached only through
`committed.initialize` (read_from end reads each partition's newest offset) and the version
bump of a saved row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from events.catalog import committed
from events.core import defaults
from events.core.annotations import (
    MAX_EVENT_SEND_COUNT,
    UNPROCESSABLE_EVENT_POLICY,
    check_string_map,
    delivery_settings,
)
from events.core.authorization import SUBSCRIPTION_ROLES, check_authorization
from events.core.numbers import whole_number
from events.core.offsets import CursorError, parse_cursor
from events.core.problems import Problem
from events.core.times import rfc3339
from events.core.topics import check_patterns
from events.models import EventType, Subscription, subscription_identity

# The field each of Nakadi's dead-letter annotations sets.
ANNOTATION_OF = {
    "max_deliveries": MAX_EVENT_SEND_COUNT,
    "unprocessable_event_policy": UNPROCESSABLE_EVENT_POLICY,
}


def invalid(detail: str) -> Problem:
    return Problem(422, detail)


def check_delivery(max_deliveries: int, policy: str) -> None:
    """422 for skipping after a single delivery. A failed delivery is charged to a whole
    batch, and only then is each of its events sent alone; with one delivery, a healthy
    event that shared the batch with a poison one would be acked unread and stored nowhere.
    """
    if policy == Subscription.UnprocessableEventPolicy.SKIP and max_deliveries < 2:
        raise invalid(
            f'Skipping (unprocessable_event_policy "skip", annotation '
            f'"{UNPROCESSABLE_EVENT_POLICY}": "SKIP_EVENT") needs at least 2 deliveries '
            f'(max_deliveries, annotation "{MAX_EVENT_SEND_COUNT}"), so that a healthy event '
            f"that shared a batch with a poison one gets a try of its own; got {max_deliveries}."
        )


@dataclass(frozen=True)
class Request:
    """A checked POST body: the model's fields, its event types, its identity."""

    fields: dict[str, Any]
    event_types: list[EventType]
    identity: str
    given: frozenset[str] = frozenset()  # what the body asks to be so (parse says which)


def _text(body: dict[str, Any], key: str, default: str | None = None) -> str:
    value = body.get(key, default)
    if not isinstance(value, str) or not value:
        raise invalid(f'Field "{key}" is required and must be a non-empty string.')
    return value


def _bounded(body: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = whole_number(body.get(key, default))
    if value is None or not low <= value <= high:
        raise invalid(f'Field "{key}" must be an integer from {low} to {high}.')
    return value


def parse(body: Any, stored: Subscription | None = None) -> Request:
    """A POST /api/subscriptions body, checked; 422 naming the first problem. For a PUT
    over `stored`, a field of Streamsite's own echoed with its stored value (as a GET
    renders it) is not given: the annotations decide what it becomes.
    """
    if not isinstance(body, dict):
        raise invalid("The body must be a Subscription object.")
    owner = _text(body, "owning_application")
    group = _text(body, "consumer_group", "default")
    names = body.get("event_types")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise invalid('Field "event_types" must be a non-empty list of event type names.')
    names = sorted(set(names))
    found = {et.name: et for et in EventType.objects.filter(name__in=names)}
    missing = [name for name in names if name not in found]
    if missing:
        raise invalid(f"Unknown event types: {', '.join(missing)}.")
    read_from = body.get("read_from", "end")
    if read_from not in Subscription.ReadFrom.values:
        raise invalid('Field "read_from" must be one of begin, end, cursors.')
    mode = body.get("mode", "ordered")
    if mode not in Subscription.Mode.values:
        raise invalid('Field "mode" must be ordered or shared.')
    annotations = check_string_map(body, "annotations")
    fields = {
        "owning_application": owner,
        "consumer_group": group,
        "read_from": read_from,
        "initial_cursors": _initial_cursors(body, read_from, found),
        "mode": mode,
        "commit_timeout": _bounded(
            body, "commit_timeout", defaults.COMMIT_TIMEOUT, 1, defaults.MAX_COMMIT_TIMEOUT
        ),
        "max_deliveries": _bounded(
            body, "max_deliveries", defaults.MAX_DELIVERIES, 1, defaults.MAX_DELIVERIES_LIMIT
        ),
        "ack_timeout": _bounded(
            body, "ack_timeout", defaults.ACK_TIMEOUT, 1, defaults.MAX_ACK_TIMEOUT
        ),
        "topics": _topics(body),
        "authorization": check_authorization(body, SUBSCRIPTION_ROLES),
        "annotations": annotations,
        "unprocessable_event_policy": _policy(body),
    }
    given = frozenset(
        key
        for key in body
        if stored is None or key not in _OWN or fields[key] != getattr(stored, key)
    )
    fields.update(_annotated(given, fields, annotations))
    if stored is None:  # a PUT is checked on what it makes of the stored settings
        check_delivery(fields["max_deliveries"], fields["unprocessable_event_policy"])
    return Request(
        fields, [found[name] for name in names], subscription_identity(owner, names, group), given
    )


def _policy(body: dict[str, Any]) -> str:
    policies = Subscription.UnprocessableEventPolicy
    value = body.get("unprocessable_event_policy", policies.DEAD_LETTER)
    if value not in policies.values:
        raise invalid('Field "unprocessable_event_policy" must be dead_letter or skip.')
    return str(value)


def _annotated(
    given: frozenset[str], fields: dict[str, Any], annotations: dict[str, str]
) -> dict[str, Any]:
    """The fields Nakadi's dead-letter annotations set; 422 where the body also gives the
    field itself with another value (which one would be meant?).
    """
    settings = delivery_settings(annotations, defaults.MAX_DELIVERIES_LIMIT)
    for key, value in settings.items():
        if key in given and fields[key] != value:
            raise invalid(
                f'Field "{key}" ({fields[key]}) disagrees with the annotation '
                f'"{ANNOTATION_OF[key]}" ("{annotations[ANNOTATION_OF[key]]}"); send one of them.'
            )
    return settings


def _topics(body: dict[str, Any]) -> list[str]:
    try:
        return check_patterns(body.get("topics", []))
    except ValueError as error:
        raise invalid(f'Field "topics": {error}.') from None


def _initial_cursors(
    body: dict[str, Any], read_from: str, types: dict[str, EventType]
) -> list[dict[str, str]]:
    items = body.get("initial_cursors") or []
    if read_from != "cursors":
        if items:
            raise invalid('"initial_cursors" are only read with read_from "cursors".')
        return []
    if not isinstance(items, list):
        raise invalid('Field "initial_cursors" must be a list of cursors.')
    partitions = {name: et.partition_count for name, et in types.items()}
    try:
        cursors = [parse_cursor(item, partitions) for item in items]
    except CursorError as error:
        raise invalid(f"Invalid initial cursor: {error}.") from None
    given = {(c.event_type, c.partition) for c in cursors}
    if len(given) != len(cursors):
        raise invalid("initial_cursors name a partition more than once.")
    needed = {(name, p) for name, count in partitions.items() for p in range(count)}
    if given != needed:
        absent = sorted(needed - given)
        raise invalid(
            "initial_cursors must cover every partition; missing: "
            + ", ".join(f"{name}/{p}" for name, p in absent)
            + "."
        )
    return [c.as_json() for c in sorted(cursors)]


def create_or_get(request: Request) -> tuple[Subscription, bool]:
    """The subscription with this identity, created now (True) or found (False)."""
    existing = Subscription.objects.filter(identity=request.identity).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            subscription = Subscription.objects.create(identity=request.identity, **request.fields)
            subscription.event_types.set(request.event_types)
    except IntegrityError:  # created meanwhile by a concurrent request
        return Subscription.objects.get(identity=request.identity), False
    committed.initialize(subscription)  # read_from "end" means the end as of now
    return subscription, True


# What Nakadi compares on PUT, with its words for a difference (SubscriptionValidationService).
_FIXED = (
    ("consumer_group", "subscription consumer group"),
    ("event_types", "subscription event types"),
    ("owning_application", "owning application"),
    ("read_from", "read from"),
    ("initial_cursors", "initial cursors"),
)

_OWN = (
    "mode",
    "commit_timeout",
    "max_deliveries",
    "ack_timeout",
    "topics",
    "unprocessable_event_policy",
)

# What a setting falls back to when the annotation that set it is dropped.
_UNANNOTATED = {
    "max_deliveries": defaults.MAX_DELIVERIES,
    "unprocessable_event_policy": Subscription.UnprocessableEventPolicy.DEAD_LETTER,
}


def update(subscription: Subscription, request: Request) -> None:
    """Apply a PUT (`request` parsed over `subscription`), as Nakadi does: `authorization`
    and `annotations` are replaced, and with the annotations what Nakadi's dead-letter
    annotations set (a setting whose annotation is dropped goes back to its default). 422
    for any other field that differs from the stored one, for settings that would skip after
    a single delivery, or for dropping a stored authorization. Sessions already streaming
    keep the settings they started with.
    """
    stored = {
        **{key: getattr(subscription, key) for key, _ in _FIXED},
        "event_types": sorted(et.name for et in subscription.event_types.all()),
    }
    given = {**request.fields, "event_types": [et.name for et in request.event_types]}
    for key, words in _FIXED:
        if given[key] != stored[key]:
            raise invalid(f"Not allowed to change {words}.")
    annotations = request.fields["annotations"]
    changes: dict[str, Any] = {"annotations": annotations}
    for key, annotation in ANNOTATION_OF.items():
        if annotation in annotations:
            changes[key] = request.fields[key]
        elif annotation in subscription.annotations:
            changes[key] = _UNANNOTATED[key]
    for key in _OWN:  # Streamsite's own fields: Nakadi's tools never send them
        if key in request.given and given[key] != changes.get(key, getattr(subscription, key)):
            raise invalid(f"Not allowed to change {key}.")
    after = {key: changes.get(key, getattr(subscription, key)) for key in ANNOTATION_OF}
    check_delivery(after["max_deliveries"], after["unprocessable_event_policy"])
    authorization = request.fields["authorization"]
    if authorization is None and subscription.authorization is not None:
        raise invalid(
            "Changing authorization object to `null` is not possible due to existing one."
        )
    changes["authorization"] = authorization
    changed = [key for key, value in changes.items() if getattr(subscription, key) != value]
    if changed:
        for key in changed:
            setattr(subscription, key, changes[key])
        subscription.save(update_fields=[*changed, "updated_at"])


def render(subscription: Subscription) -> dict[str, Any]:
    """The Nakadi Subscription JSON of a model (with Streamsite's mode and limits)."""
    out: dict[str, Any] = {
        "id": str(subscription.id),
        "owning_application": subscription.owning_application,
        "event_types": sorted(et.name for et in subscription.event_types.all()),
        "consumer_group": subscription.consumer_group,
        "read_from": subscription.read_from,
        "mode": subscription.mode,
        "commit_timeout": subscription.commit_timeout,
        "max_deliveries": subscription.max_deliveries,
        "ack_timeout": subscription.ack_timeout,
        "topics": subscription.topics,
        "unprocessable_event_policy": subscription.unprocessable_event_policy,
        "authorization": subscription.authorization,
        "annotations": subscription.annotations,
        "created_at": rfc3339(subscription.created_at),
        "updated_at": rfc3339(subscription.updated_at),
    }
    if subscription.read_from == "cursors":
        out["initial_cursors"] = subscription.initial_cursors
    return out


def partitions_of(subscription: Subscription) -> list[tuple[str, int]]:
    """The subscription's partitions, as (store id, partition)."""
    return [
        (et.store_id, p) for et in subscription.event_types.all() for p in range(et.partition_count)
    ]
