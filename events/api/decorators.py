"""The checks every /api/ view needs: allowed methods, the caller (a token or the session,
events/api/identity.py, which also makes Django's CSRF check of a session-authenticated
call: Django's own is off here), Redis's errors as 503s. Views stay thin: parse, authorize,
call the domain, render.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

import redis
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from events.api import identity
from events.api.http import response_of
from events.catalog.auth import Principal
from events.core.problems import Problem

logger = logging.getLogger(__name__)


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


def safe_view(view: View) -> View:
    """A public view that only reads (the API description, the health probes): GET and
    HEAD; any other method gets 405 as problem+json with `Allow`, before Django's CSRF check
    could answer an unsafe method with its HTML 403.
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            problem = Problem(
                405,
                f"{request.method} is not allowed here; use GET.",
                headers={"Allow": "GET, HEAD"},
            )
            return response_of(problem)
        response: HttpResponse = view(request, *args, **kwargs)
        return response

    return csrf_exempt(wrapper)


def api_view(*methods: str) -> Callable[[View], View]:
    """Authenticate, allow only `methods`, and answer a raised Problem; sync or async views
    (async views read the principal from `events.catalog.snapshots`, without a database hop).
    """

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
                    request.principal = await identity.principal_of_request(  # type: ignore[attr-defined]
                        request
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
                request.principal = identity.principal_of_request_sync(  # type: ignore[attr-defined]
                    request
                )
                response: HttpResponse = view(request, *args, **kwargs)
                return response
            except Problem as problem:
                return response_of(problem)
            except (redis.ConnectionError, redis.TimeoutError) as error:
                return response_of(redis_unavailable(error))

        return csrf_exempt(wrapper)

    return decorate
