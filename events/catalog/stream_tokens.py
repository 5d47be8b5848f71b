"""Stream tokens: short-lived, signed, stored nowhere; they go in a stream's URL as
`access_token=` where a browser cannot send a header (an `EventSource` from another origin).

A token names whom it acts as (`Principal.subject`), its scope (`read` of event types, or
`consume` of one subscription) and its expiry. It is checked against the grants again
each time it is used, so it never allows more than its client may do then (grants, or
authorization sections that name it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core import signing

from events.catalog import plans, snapshots
from events.catalog.auth import CONSUME, READ, UNAUTHORIZED_HEADERS, Principal, Scope
from events.core.numbers import whole_number
from events.core.problems import Problem

SALT = "streamsite.stream-token"  # a signature of its own: no other signed value passes
DEFAULT_TTL_SECONDS = 3600
MIN_TTL_SECONDS = 1
MAX_TTL_SECONDS = 24 * 3600
MAX_PATTERNS = 100


@dataclass(frozen=True)
class Claims:
    """What a valid token says: whom it acts as, what it allows, until when."""

    subject: str
    scope: Scope
    expires_at: datetime


def mint(principal: Principal, body: Any) -> tuple[str, datetime]:
    """A token for `{"event_types": [...]}` or `{"subscription": id}`, optionally with
    `"ttl_seconds"`: 422 for a bad body, 404 for an unknown subscription, 403 for what the
    principal may not read or consume itself.
    """
    if principal.scope is not None:
        raise Problem(403, "A stream token cannot mint stream tokens.")
    scope = _scope(principal, body)
    expires = int(time.time() * 1000) + _ttl(body) * 1000  # ms
    claims = {"s": principal.subject, "a": scope.action, "e": expires}
    if scope.action == READ:
        claims["t"] = list(scope.patterns)
    else:
        claims["u"] = scope.subscription
    token = signing.dumps(claims, salt=SALT, compress=True)
    return token, datetime.fromtimestamp(expires / 1000, UTC)


def verify(token: str) -> Claims:
    """The claims of a token this server signed; 401 if it is forged, mangled or expired."""
    try:
        claims = signing.loads(token, salt=SALT)
        action = claims["a"]
        if action == READ:
            scope = Scope(READ, patterns=tuple(str(p) for p in claims["t"]))
        elif action == CONSUME:
            scope = Scope(CONSUME, subscription=str(claims["u"]))
        else:
            raise ValueError(action)
        subject, expires = str(claims["s"]), int(claims["e"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise Problem(
            401,
            "The access_token is not a valid stream token; mint one with POST /api/stream-tokens.",
            headers=UNAUTHORIZED_HEADERS,
        ) from None
    expires_at = datetime.fromtimestamp(expires / 1000, UTC)
    if expires <= time.time() * 1000:
        raise Problem(
            401,
            f"The stream token expired at {rfc3339(expires_at)}; mint a new one.",
            headers=UNAUTHORIZED_HEADERS,
        )
    return Claims(subject, scope, expires_at)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _scope(principal: Principal, body: Any) -> Scope:
    if not isinstance(body, dict):
        raise Problem(422, 'Send {"event_types": [...]} or {"subscription": id}.')
    unknown = set(body) - {"event_types", "subscription", "ttl_seconds"}
    if unknown:
        raise Problem(422, f"Unknown fields: {', '.join(sorted(unknown))}.")
    if ("event_types" in body) == ("subscription" in body):
        raise Problem(422, 'Send either "event_types" or "subscription", not both or neither.')
    if "subscription" in body:
        if not isinstance(body["subscription"], str):
            raise Problem(422, '"subscription" must be a subscription id (a string).')
        found = plans.get_subscription(body["subscription"])
        plans.require_consume(principal, found)
        return Scope(CONSUME, subscription=str(found.pk))
    patterns = body["event_types"]
    if (
        not isinstance(patterns, list)
        or not 0 < len(patterns) <= MAX_PATTERNS
        or not all(isinstance(p, str) and p.strip() for p in patterns)
    ):
        raise Problem(
            422, f'"event_types" must be a list of 1 to {MAX_PATTERNS} event type names or globs.'
        )
    for pattern in patterns:
        if not principal.covers(READ, pattern) and not principal.listed(
            _section(pattern), "readers"
        ):
            raise Problem(403, f"Client {principal.name!r} has no read grant for {pattern!r}.")
    return Scope(READ, patterns=tuple(dict.fromkeys(patterns)))


def _section(pattern: str) -> dict[str, Any] | None:
    """The authorization section of the event type `pattern` names; None for a glob (a
    glob needs a grant: a section speaks for its own type only) or an unknown name."""
    if any(c in pattern for c in "*?["):
        return None
    return snapshots.load_authorization(pattern)


def _ttl(body: dict[str, Any]) -> int:
    ttl = whole_number(body.get("ttl_seconds", DEFAULT_TTL_SECONDS))
    if ttl is None:
        raise Problem(422, '"ttl_seconds" must be an integer.')
    if not MIN_TTL_SECONDS <= ttl <= MAX_TTL_SECONDS:
        raise Problem(422, f'"ttl_seconds" must be {MIN_TTL_SECONDS} to {MAX_TTL_SECONDS} seconds.')
    return ttl
