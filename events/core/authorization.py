"""Nakadi's `authorization` sections: lists of `{data_type, value}` per role,
`admins`/`readers`/`writers` on an event type, `admins`/`readers` on a subscription; their
shape, and whom they name. Pure.

A section adds to Streamsite's client grants, never takes away (docs/nakadi-contract.md,
"Authorization in Streamsite"): an event type's `admins` may change and delete it, its
`readers` read it and consume it through subscriptions, its `writers` publish to it; a
subscription's `admins` may change, delete and reset it, its `readers` consume it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from events.core.problems import Problem

EVENT_TYPE_ROLES = ("admins", "readers", "writers")
SUBSCRIPTION_ROLES = ("admins", "readers")
WILDCARD = ("*", "*")  # Nakadi's "everyone": every authenticated caller
CLIENT_TYPES = frozenset({"service", "client"})  # Nakadi's word for an application, and ours
USER, TEAM = "user", "team"

# Which role of an event type's section allows an action that a grant would allow.
EVENT_TYPE_ROLE_OF = {"read": "readers", "consume": "readers", "publish": "writers"}


@dataclass(frozen=True)
class Caller:
    """Whom a section may name: the client's name, the signed-in user's name and groups."""

    client: str | None = None
    user: str | None = None
    teams: frozenset[str] = field(default_factory=frozenset)

    def attributes(self) -> Iterable[tuple[str, str]]:
        if self.client is not None:
            yield from ((data_type, self.client) for data_type in CLIENT_TYPES)
        if self.user is not None:
            yield USER, self.user
        yield from ((TEAM, team) for team in self.teams)


def names(authorization: Mapping[str, Any] | None, role: str, caller: Caller) -> bool:
    """Whether the section's `role` lists the caller, or the wildcard. Unknown data types
    name no one (they are stored as sent)."""
    if not authorization:
        return False
    listed = {(a.get("data_type"), a.get("value")) for a in authorization.get(role) or ()}
    return WILDCARD in listed or any(attribute in listed for attribute in caller.attributes())


def _attribute(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and set(value) == {"data_type", "value"}
        and all(isinstance(v, str) and v for v in value.values())
    )


def check_authorization(body: dict[str, Any], roles: tuple[str, ...]) -> dict[str, Any] | None:
    """The body's `authorization`, None when absent or null; 422 unless it holds exactly
    `roles`, each a non-empty list of {data_type, value} strings (Nakadi's minItems 1)
    without duplicates (as Nakadi's AuthorizationValidator)."""
    authorization = body.get("authorization")
    if authorization is None:
        return None
    if (
        not isinstance(authorization, dict)
        or set(authorization) != set(roles)
        or not all(
            isinstance(attributes, list) and attributes and all(map(_attribute, attributes))
            for attributes in authorization.values()
        )
    ):
        raise Problem(
            422,
            f'Field "authorization" must be {{{", ".join(roles)}}}, each a non-empty list '
            "of {data_type, value} strings.",
        )
    duplicated = []
    for role in roles:
        counts = Counter((a["data_type"], a["value"]) for a in authorization[role])
        twice = [f"{data_type}:{value}" for (data_type, value), n in counts.items() if n > 1]
        if twice:
            duplicated.append(
                f"authorization property '{role}' contains duplicated attribute(s): "
                + ", ".join(twice)
            )
    if duplicated:
        raise Problem(422, "; ".join(duplicated))
    return authorization
