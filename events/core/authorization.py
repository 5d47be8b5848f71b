"""The shape of Nakadi's `authorization` sections: lists of `{data_type, value}` per role,
`admins`/`readers`/`writers` on an event type, `admins`/`readers` on a subscription. Pure.

Streamsite decides access by its clients' grants; these sections are checked, stored and
returned as sent, for Nakadi's tools.
"""

from __future__ import annotations

from typing import Any

from events.core.problems import Problem

EVENT_TYPE_ROLES = ("admins", "readers", "writers")
SUBSCRIPTION_ROLES = ("admins", "readers")


def _attribute(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and set(value) == {"data_type", "value"}
        and all(isinstance(v, str) and v for v in value.values())
    )


def check_authorization(body: dict[str, Any], roles: tuple[str, ...]) -> dict[str, Any] | None:
    """The body's `authorization`, None when absent or null; 422 unless it holds exactly
    `roles`, each a non-empty list of {data_type, value} strings (Nakadi's minItems 1)."""
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
    return authorization
