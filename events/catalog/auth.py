"""Bearer-token authentication and grants: who is calling, and what it may do.

`authenticate` is plain synchronous ORM code so that views, async views and Channels
consumers share it (events/api/decorators.py wraps views with it).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from events.core.problems import Problem
from events.models import ApiToken, token_digest

UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="streamsite"'}


@dataclass(frozen=True)
class Principal:
    """The authenticated client behind a request, with its grants loaded once."""

    client_id: int
    name: str
    is_admin: bool
    grants: tuple[tuple[str, str], ...]  # (action, event-type name pattern)

    def may(self, action: str, event_type: str) -> bool:
        if self.is_admin:
            return True
        return any(
            granted == action and fnmatch.fnmatchcase(event_type, pattern)
            for granted, pattern in self.grants
        )

    def require(self, action: str, event_type: str) -> None:
        """Raise 403 unless this client may do `action` on `event_type`."""
        if not self.may(action, event_type):
            raise Problem(403, f"Client {self.name!r} has no {action} grant for {event_type!r}.")

    def require_admin(self, what: str) -> None:
        if not self.is_admin:
            raise Problem(403, f"Only an admin client may {what}.")


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
    client = row.client
    grants = tuple(client.grants.values_list("action", "pattern"))
    return Principal(client.id, client.name, client.is_admin, grants)
