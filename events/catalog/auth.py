"""Who is calling, and what it may do: principals, their grants, and the scope of a stream
token (README, "Browsers").

`authenticate` is plain synchronous ORM code so that views, async views and Channels
consumers share it (events/api/identity.py picks the credential of a request). Signed-in
users are in events/catalog/users.py, stream tokens in events/catalog/stream_tokens.py.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from events.core.authorization import EVENT_TYPE_ROLE_OF, Caller, names
from events.core.problems import Problem
from events.models import ApiToken, Client, token_digest

UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="streamsite"'}
READ, CONSUME = "read", "consume"  # the actions a stream token may carry


@dataclass(frozen=True)
class Scope:
    """What a stream token allows: `read` of the event types matching `patterns`, or
    `consume` of one `subscription`; always within its client's own grants.
    """

    action: str
    patterns: tuple[str, ...] = ()
    subscription: str | None = None

    def allows(self, action: str, event_type: str) -> bool:
        if action != self.action:
            return False
        if action == READ:
            return any(fnmatch.fnmatchcase(event_type, pattern) for pattern in self.patterns)
        return True  # consume: which subscription is `Principal.require_subscription`'s check

    def describe(self) -> str:
        if self.action == READ:
            return f"reading {', '.join(self.patterns)}"
        return f"consuming subscription {self.subscription}"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request, with its grants loaded once.

    `user_id`, `user_name` and `teams` (its groups' names) are set for a signed-in user (and
    the stream tokens it mints); `scope` and `expires_at` for a stream token, None otherwise.
    An authorization section naming it allows what the grants do not (`may`, `require`).
    """

    client_id: int | None
    name: str
    is_admin: bool
    grants: tuple[tuple[str, str], ...]  # (action, event-type name pattern)
    user_id: int | None = None
    scope: Scope | None = None
    expires_at: datetime | None = None
    user_name: str | None = None
    teams: frozenset[str] = frozenset()

    @property
    def subject(self) -> str:
        """Whom a stream token minted by this principal acts as when it is used."""
        return f"user:{self.user_id}" if self.user_id is not None else f"client:{self.client_id}"

    def listed(self, authorization: Mapping[str, Any] | None, role: str) -> bool:
        """Whether the section's `role` names this principal: its client (`service` or
        `client`), its user (`user`), one of its groups (`team`), or everyone (`*`).
        """
        client = self.name if self.client_id is not None else None
        return names(authorization, role, Caller(client, self.user_name, self.teams))

    def may(
        self, action: str, event_type: str, authorization: Mapping[str, Any] | None = None
    ) -> bool:
        """Whether the scope allows `action` on `event_type`, and the grants or the event
        type's `authorization` section (its role for the action) do."""
        if self.scope is not None and not self.scope.allows(action, event_type):
            return False
        return self.covers(action, event_type) or self.listed(
            authorization, EVENT_TYPE_ROLE_OF.get(action, "")
        )

    def administers(self, authorization: Mapping[str, Any] | None) -> bool:
        """Whether this principal is an admin client, or among the `admins` of the event
        type or subscription whose section `authorization` is (never with a stream token).
        """
        return self.scope is None and (self.is_admin or self.listed(authorization, "admins"))

    def covers(self, action: str, pattern: str) -> bool:
        """Whether the grants (not the scope) allow `action` on every name that `pattern`, a
        name or a glob, can match: a grant's pattern must match the pattern itself.
        """
        if self.is_admin:
            return True
        return any(
            granted == action and fnmatch.fnmatchcase(pattern, granted_pattern)
            for granted, granted_pattern in self.grants
        )

    def require(
        self, action: str, event_type: str, authorization: Mapping[str, Any] | None = None
    ) -> None:
        """Raise 403 unless this principal may do `action` on `event_type` (`may`)."""
        if self.scope is not None and not self.scope.allows(action, event_type):
            raise Problem(
                403,
                f"This stream token allows {self.scope.describe()} only, "
                f"not {action} of {event_type!r}.",
            )
        if self.covers(action, event_type):
            return
        role = EVENT_TYPE_ROLE_OF.get(action, "")
        if authorization is None:
            raise Problem(403, f"Client {self.name!r} has no {action} grant for {event_type!r}.")
        if not self.listed(authorization, role):
            raise Problem(
                403,
                f"Client {self.name!r} has no {action} grant for {event_type!r}, and the "
                f"event type's authorization does not name it among its {role}.",
            )

    def require_subscription(self, subscription_id: str) -> None:
        """Raise 403 if a stream token is used to consume another subscription than its own."""
        scope = self.scope
        if scope is not None and (scope.action != CONSUME or scope.subscription != subscription_id):
            raise Problem(
                403,
                f"This stream token allows {scope.describe()} only, "
                f"not consuming subscription {subscription_id}.",
            )

    def require_admin(self, what: str) -> None:
        if not self.is_admin or self.scope is not None:
            raise Problem(403, f"Only an admin client may {what}.")


def principal_of_client(
    client: Client,
    user_id: int | None = None,
    user_name: str | None = None,
    teams: frozenset[str] = frozenset(),
) -> Principal:
    """The principal of a client row (its grants read here, or from a prefetch), acting
    for the user `user_id` (named `user_name`, in the groups `teams`) if one signed in.
    """
    grants = tuple((grant.action, grant.pattern) for grant in client.grants.all())
    return Principal(
        client.id,
        client.name,
        client.is_admin,
        grants,
        user_id=user_id,
        user_name=user_name,
        teams=teams,
    )


def authenticate(authorization: str | None) -> Principal:
    """The principal for an `Authorization: Bearer …` header value; 401 if there is none."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401,
            "Send an API token as 'Authorization: Bearer <token>'.",
            headers=UNAUTHORIZED_HEADERS,
        )
    row = (
        ApiToken.objects.select_related("client")
        .filter(digest=token_digest(token.strip()), revoked=False)
        .first()
    )
    if row is None:
        raise Problem(401, "The API token is unknown or revoked.", headers=UNAUTHORIZED_HEADERS)
    return principal_of_client(row.client)
