"""Helpers for the tests of authorization sections over a real server: clients with only
the grants a test gives, and signed-in users with groups (events/core/authorization.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from events.catalog.clients import create_client
from tests.api.test_browser_auth import CSRF, session_of


def attr(data_type: str, value: str) -> dict[str, str]:
    return {"data_type": data_type, "value": value}


def clients(live_server: Any) -> Iterator[Any]:
    """For a fixture: `api(name, **grants)`, an HTTP client of the live server as the client
    `name`, created with `grants` only (none unless told; `ops` is an admin client)."""
    opened: list[httpx.Client] = []

    def of(name: str, **grants: list[str]) -> httpx.Client:
        _, token = create_client(name, is_admin=name == "ops", **grants)
        opened.append(live_server.client(token))
        return opened[-1]

    yield of
    for http in opened:
        http.close()


def token_of(http: httpx.Client) -> str:
    return str(http.headers["Authorization"]).split()[1]


def linked(username: str, client: str, *groups: str) -> Any:
    """A user in `groups`, linked to a new client `client` without grants."""
    user = get_user_model().objects.create_user(username)
    for group in groups:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    row, _ = create_client(client)
    row.user = user
    row.save()
    return user


def page(live_server, user) -> httpx.Client:
    """A same-origin page of the live server, signed in as `user`, with its CSRF token."""
    return httpx.Client(
        base_url=live_server.url,
        cookies={"sessionid": session_of(user), "csrftoken": CSRF},
        headers={"X-CSRFToken": CSRF},
        timeout=10,
    )
