"""Per-process copies of what every publish reads from the database, kept exact by Redis.

Who is calling (token → principal, with its user's groups) and what an event type is
(name → publishing target, with its authorization section) are read on every publish;
loading them from the database costs a thread and a connection per request. Each process
caches them; any change to a client, grant, token, user, group membership or event type
moves a version value in Redis after its transaction commits, and a request reads the
value (one async round trip, no thread) before trusting its copy. Entries also expire
after MAX_AGE, in case a bump was lost while Redis was away, or a change bypassed the
model signals (a queryset `.update()`): write through `save()` and `delete()`.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import redis
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete

from events.catalog import users
from events.catalog.auth import Principal, authenticate
from events.models import ApiToken, Client, EventType, Grant, Subscription, token_digest
from events.store import versions
from events.store.keys import AUTH_EPOCH_KEY, event_type_version_key, subscription_version_key

logger = logging.getLogger(__name__)

MAX_AGE = 60.0  # seconds: the backstop for a version bump that never reached Redis
MAX_ENTRIES = 10_000

T = TypeVar("T")


class VersionedCache(Generic[T]):
    """A bounded LRU of values, each valid while its version is current and it is young."""

    def __init__(self) -> None:
        self._entries: OrderedDict[str, tuple[Any, float, T]] = OrderedDict()

    def get(self, key: str, version: Any) -> T | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] != version or time.monotonic() - entry[1] > MAX_AGE:
            return None
        self._entries.move_to_end(key)
        return entry[2]

    def put(self, key: str, version: Any, value: T) -> None:
        self._entries[key] = (version, time.monotonic(), value)
        self._entries.move_to_end(key)
        while len(self._entries) > MAX_ENTRIES:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


_principals: VersionedCache[Principal] = VersionedCache()
_targets: VersionedCache[Any] = VersionedCache()
_subscriptions: VersionedCache[Any] = VersionedCache()
_sections: VersionedCache[Any] = VersionedCache()


def clear() -> None:
    """Forget every copy (tests start each case from an empty keyspace and empty caches)."""
    _principals.clear()
    _targets.clear()
    _subscriptions.clear()
    _sections.clear()


async def principal(authorization: str | None) -> Principal:
    """`auth.authenticate`, from this process's copy while no client, grant or token changed."""
    return await _principal(token_digest(authorization or ""), authenticate, authorization)


async def session_principal(session_key: str) -> Principal:
    """`users.principal_of_session`, from this process's copy while no client, grant, token
    or user changed and no one signed out (a session that only expires is refused once its
    copy is MAX_AGE old).
    """
    key = "session:" + token_digest(session_key)
    return await _principal(key, users.principal_of_session, session_key)


async def subject_principal(subject: str) -> Principal:
    """`users.principal_of_subject` (whom a stream token acts as), cached as `principal`."""
    return await _principal("subject:" + subject, users.principal_of_subject, subject)


async def _principal(key: str, load: Callable[[str], Principal], argument: Any) -> Principal:
    version = await versions.read(AUTH_EPOCH_KEY)
    found = _principals.get(key, version)
    if found is None:
        found = await sync_to_async(load)(argument)  # a refusal (401, 403) is not cached
        _principals.put(key, version, found)
    return found


async def target(name: str, load: Callable[[str], T]) -> T:
    """`load(name)` (an ORM read), from this process's copy while the event type is unchanged."""
    return await _cached(_targets, name, event_type_version_key(name), load)


async def authorization(name: str) -> dict[str, Any] | None:
    """An event type's authorization section (None: it has none, or there is no such
    type), from this process's copy while the event type is unchanged.
    """
    section: dict[str, Any] | None = await _cached(
        _sections, name, event_type_version_key(name), load_authorization
    )
    return section


def load_authorization(name: str) -> dict[str, Any] | None:
    """An event type's authorization section, from the database (None: it has none, or
    there is no such type)."""
    found: dict[str, Any] | None = (
        EventType.objects.filter(name=name).values_list("authorization", flat=True).first()
    )
    return found


async def subscription(subscription_id: str, load: Callable[[str], T]) -> T:
    """`load(subscription_id)` (an ORM read), from this process's copy while the
    subscription is unchanged; each commit reads it.
    """
    return await _cached(
        _subscriptions, subscription_id, subscription_version_key(subscription_id), load
    )


async def _cached(
    cache: VersionedCache[Any], key: str, version_key: str, load: Callable[[str], T]
) -> T:
    version = await versions.read(version_key)
    found = cache.get(key, version)
    if found is None:
        found = await sync_to_async(load)(key)
        cache.put(key, version, found)
    return found  # type: ignore[no-any-return]


def _bump(key: str) -> None:
    try:
        versions.bump(key)
    except redis.RedisError as error:
        logger.warning("could not bump %s (caches catch up within %.0f s): %s", key, MAX_AGE, error)


def _auth_changed(**kwargs: Any) -> None:
    if kwargs.get("update_fields") == frozenset({"last_login"}):
        return  # every sign-in saves this: it changes no one's rights
    transaction.on_commit(lambda: _bump(AUTH_EPOCH_KEY))


def _groups_changed(action: str = "post_add", **kwargs: Any) -> None:
    """A user joined or left a group, or a group was renamed or deleted: authorization
    sections' `team` entries may now name other users."""
    if action.startswith("post_"):
        transaction.on_commit(lambda: _bump(AUTH_EPOCH_KEY))


def _event_type_changed(instance: EventType, **kwargs: Any) -> None:
    name = instance.name
    transaction.on_commit(lambda: _bump(event_type_version_key(name)))


def _subscription_changed(instance: Subscription, **kwargs: Any) -> None:
    key = subscription_version_key(str(instance.pk))
    transaction.on_commit(lambda: _bump(key))


def _subscription_types_changed(
    instance: Subscription | EventType, action: str, pk_set: set[Any] | None, **kwargs: Any
) -> None:
    """Its event types changed (also when an event type is deleted under it)."""
    if not action.startswith("post_"):
        return
    if isinstance(instance, Subscription):
        ids = [str(instance.pk)]
    else:  # from the event type's side: the subscriptions in pk_set, or all of them
        ids = [str(pk) for pk in pk_set] if pk_set else []
    for subscription_id in ids:
        key = subscription_version_key(subscription_id)
        transaction.on_commit(lambda key=key: _bump(key))  # type: ignore[misc]


def _event_type_leaving(instance: EventType, **kwargs: Any) -> None:
    """An event type about to be deleted: its subscriptions' copies go stale."""
    for subscription_id in instance.subscriptions.values_list("pk", flat=True):
        key = subscription_version_key(str(subscription_id))
        transaction.on_commit(lambda key=key: _bump(key))  # type: ignore[misc]


def connect_signals() -> None:
    """Bump the versions on every change; called once, from the app's ready()."""
    user_logged_out.connect(_auth_changed, dispatch_uid="snapshots-logout")
    for model in (Client, Grant, ApiToken, get_user_model()):
        post_save.connect(_auth_changed, sender=model, dispatch_uid=f"snapshots-{model.__name__}")
        post_delete.connect(
            _auth_changed, sender=model, dispatch_uid=f"snapshots-d-{model.__name__}"
        )
    m2m_changed.connect(
        _groups_changed, sender=get_user_model().groups.through, dispatch_uid="snapshots-groups"
    )
    post_save.connect(_groups_changed, sender=Group, dispatch_uid="snapshots-group")
    post_delete.connect(_groups_changed, sender=Group, dispatch_uid="snapshots-d-group")
    post_save.connect(_event_type_changed, sender=EventType, dispatch_uid="snapshots-et")
    post_delete.connect(_event_type_changed, sender=EventType, dispatch_uid="snapshots-d-et")
    pre_delete.connect(_event_type_leaving, sender=EventType, dispatch_uid="snapshots-pd-et")
    post_save.connect(_subscription_changed, sender=Subscription, dispatch_uid="snapshots-sub")
    m2m_changed.connect(
        _subscription_types_changed,
        sender=Subscription.event_types.through,
        dispatch_uid="snapshots-sub-types",
    )
    post_delete.connect(_subscription_changed, sender=Subscription, dispatch_uid="snapshots-d-sub")
