"""Signed-in users as principals: the Django session of a same-origin page, and the subject
a stream token acts as (README, "Browsers").

A superuser may do everything; any other user acts with the grants of the client linked
to it (`Client.user`, set on the client's admin page), and without one gets 403. Its name
and groups are what authorization sections' `user` and `team` entries match. Plain
synchronous ORM code: events/catalog/snapshots.py caches it per process.
"""

from __future__ import annotations

import dataclasses
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib import auth
from django.contrib.auth import get_user_model
from django.http import HttpRequest

from events.catalog.auth import UNAUTHORIZED_HEADERS, Principal, principal_of_client
from events.core.problems import Problem
from events.models import Client


def principal_of_session(session_key: str) -> Principal:
    """The principal of the user signed in by the session `session_key`; 401 if the session
    has ended, 403 for a user who may not use the API. Django's own checks apply: the
    session must be live and its password hash current, the user active.
    """
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = auth.get_user(request)
    if not user.is_authenticated:
        raise Problem(
            401,
            "The session has ended: sign in again, or send an API token as "
            "'Authorization: Bearer <token>'.",
            headers=UNAUTHORIZED_HEADERS,
        )
    return principal_of_user(user)


def principal_of_user(user: Any) -> Principal:
    """An active user's principal: admin for a superuser, else its linked client's. It
    carries the user's name and its groups' names, which authorization sections may name
    (`user`, `team`).
    """
    client = (
        Client.objects.filter(user=user).prefetch_related("grants").first()
        if user.pk is not None
        else None
    )
    name = user.get_username()
    teams = (
        frozenset(user.groups.values_list("name", flat=True))
        if user.pk is not None
        else frozenset()
    )
    if user.is_superuser:
        if client is None:
            return Principal(None, name, True, (), user_id=user.pk, user_name=name, teams=teams)
        own = principal_of_client(client, user_id=user.pk, user_name=name, teams=teams)
        return dataclasses.replace(own, is_admin=True)
    if client is None:
        raise Problem(
            403,
            f"User {name!r} is not linked to an API client: an admin links "
            "one on the client's page in the admin (field 'user').",
        )
    return principal_of_client(client, user_id=user.pk, user_name=name, teams=teams)


def principal_of_subject(subject: str) -> Principal:
    """The principal a stream token acts as (`Principal.subject`), as it is now: a client
    deleted, or a user deactivated, since the token was minted is refused (401).
    """
    kind, _, key = subject.partition(":")
    gone = Problem(
        401,
        f"The {kind or 'caller'} this stream token was minted for no longer exists.",
        headers=UNAUTHORIZED_HEADERS,
    )
    if not key.isdigit():
        raise gone
    if kind == "client":
        client = Client.objects.filter(pk=int(key)).prefetch_related("grants").first()
        if client is None:
            raise gone
        return principal_of_client(client)
    if kind == "user":
        user = get_user_model().objects.filter(pk=int(key), is_active=True).first()
        if user is None:
            raise gone
        return principal_of_user(user)
    raise gone
