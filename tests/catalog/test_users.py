"""Signed-in users as principals (events/catalog/users.py): the name and groups that
authorization sections' `user` and `team` entries match, kept current in every process's
cache (events/catalog/snapshots.py)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

from events.catalog.clients import create_client
from events.catalog.users import principal_of_subject, principal_of_user
from events.store.connections import redis_client
from events.store.keys import AUTH_EPOCH_KEY

pytestmark = pytest.mark.django_db(transaction=True)  # real commits: the bumps run on commit


@pytest.fixture
def alice():
    user = User.objects.create_user("alice")
    user.groups.add(Group.objects.create(name="payments"), Group.objects.create(name="ops"))
    client, _ = create_client("dashboard", read=["order.*"])
    client.user = user
    client.save()
    return user


def test_a_linked_user_carries_its_name_and_groups(alice):
    principal = principal_of_user(alice)
    assert (principal.name, principal.user_name) == ("dashboard", "alice")
    assert principal.teams == frozenset({"payments", "ops"})
    assert principal.grants == (("read", "order.*"),)


def test_a_stream_token_minted_by_a_user_acts_with_its_groups(alice):
    assert principal_of_subject(f"user:{alice.pk}").teams == frozenset({"payments", "ops"})


def test_a_superuser_carries_them_too(db):
    root = User.objects.create_superuser("root", "root@example.com", None)
    root.groups.add(Group.objects.create(name="ops"))
    principal = principal_of_user(root)
    assert principal.is_admin
    assert (principal.user_name, principal.teams) == ("root", frozenset({"ops"}))


def test_joining_leaving_or_renaming_a_group_makes_cached_principals_stale(alice):
    epochs = [redis_client().get(AUTH_EPOCH_KEY)]

    def moved() -> bool:
        epochs.append(redis_client().get(AUTH_EPOCH_KEY))
        return epochs[-1] != epochs[-2]

    audit = Group.objects.create(name="audit")
    assert moved()
    alice.groups.add(audit)
    assert moved()
    alice.groups.remove(audit)
    assert moved()
    audit.name = "auditors"
    audit.save()
    assert moved()
    audit.delete()
    assert moved()
