"""Bearer-token authentication and grants.

`authenticate` is plain synchronous ORM code so that views, async views and Channels
consumers share it; `api_view` wraps a view with the checks every /api/ call needs.
"""

from __future__ import annotations

import fnmatch
import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from events.core.problems import Problem
from events.http import response_of
from events.models import ApiToken, token_digest

logger = logging.getLogger(__name__)

_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="streamsite"'}


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
            headers=_UNAUTHORIZED_HEADERS,
        )
    row = (
        ApiToken.objects.select_related("client")
        .filter(digest=token_digest(token.strip()), revoked=False)
        .first()
    )
    if row is None:
        raise Problem(401, "The API token is unknown or revoked.", headers=_UNAUTHORIZED_HEADERS)
    client = row.client
    grants = tuple(client.grants.values_list("action", "pattern"))
    return Principal(client.id, client.name, client.is_admin, grants)


def principal_of(request: HttpRequest) -> Principal:
    """The authenticated client of a request that went through `api_view`."""
    principal: Principal = request.principal  # type: ignore[attr-defined]
    return principal


View = Callable[..., Any]


def redis_unavailable(error: Exception) -> Problem:
    """503 with a retry hint: Redis did not answer; nothing was stored."""
    logger.warning("Redis unavailable: %s", error)
    return Problem(
        503,
        "The event store (Redis) is not answering; retry shortly. Nothing was stored.",
        headers={"Retry-After": "1"},
    )


def api_view(*methods: str) -> Callable[[View], View]:
    """Authenticate, allow only `methods`, and answer a raised Problem; sync or async views
    (async views read the principal from `events.catalog.snapshots`, without a database hop).
    """
    from events.catalog import snapshots  # it builds on this module

    allowed = ", ".join(methods)

    def check_method(request: HttpRequest) -> None:
        if request.method not in methods:
            raise Problem(
                405,
                f"{request.method} is not allowed here; use {allowed}.",
                headers={"Allow": allowed},
            )

    def decorate(view: View) -> View:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(
                request: HttpRequest, *args: Any, **kwargs: Any
            ) -> HttpResponse:
                try:
                    check_method(request)
                    request.principal = await snapshots.principal(  # type: ignore[attr-defined]
                        request.headers.get("Authorization")
                    )
                    response: HttpResponse = await view(request, *args, **kwargs)
                    return response
                except Problem as problem:
                    return response_of(problem)
                except (redis.ConnectionError, redis.TimeoutError) as error:
                    return response_of(redis_unavailable(error))

            return csrf_exempt(async_wrapper)

        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                check_method(request)
                request.principal = authenticate(  # type: ignore[attr-defined]
                    request.headers.get("Authorization")
                )
                response: HttpResponse = view(request, *args, **kwargs)
                return response
            except Problem as problem:
                return response_of(problem)
            except (redis.ConnectionError, redis.TimeoutError) as error:
                return response_of(redis_unavailable(error))

        return csrf_exempt(wrapper)

    return decorate
