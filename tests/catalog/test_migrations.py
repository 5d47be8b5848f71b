"""Renames in the models keep what the database holds: ids, rows and staff permissions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("events", "0005_recovery")]
AFTER = [("events", "0006_names")]


def migrate(targets):
    """Migrates as `manage.py migrate` does (its signals rename content types), and gives
    the models as they were at `targets`.
    """
    [(app, name)] = targets
    call_command("migrate", app, name, verbosity=0)
    executor = MigrationExecutor(connection)
    others = [node for node in executor.loader.graph.leaf_nodes() if node[0] != "events"]
    return executor.loader.project_state(others + targets).apps


@pytest.fixture
def migrations(transactional_db) -> Iterator[None]:
    """Leaves the database at the newest migrations again, for the tests after this one."""
    yield
    call_command("migrate", verbosity=0)


def test_renaming_store_id_and_committed_cursor_keeps_rows_and_permissions(migrations):
    old = migrate(BEFORE)
    ContentType = old.get_model("contenttypes", "ContentType")
    Permission = old.get_model("auth", "Permission")
    Group = old.get_model("auth", "Group")
    event_type = old.get_model("events", "EventType").objects.create(
        name="order.created",
        category="business",
        schema="{}",
        retention_time_ms=3_600_000,
        retention_max_events=1000,
        stream_id="abc123",
    )
    subscription = old.get_model("events", "Subscription").objects.create(
        owning_application="shop", consumer_group="billing"
    )
    subscription.event_types.add(event_type)
    old.get_model("events", "Cursor").objects.create(
        subscription=subscription, event_type=event_type, partition=0, offset="5-0"
    )
    cursor_type, _ = ContentType.objects.get_or_create(app_label="events", model="cursor")
    view, _ = Permission.objects.get_or_create(
        content_type=cursor_type, codename="view_cursor", defaults={"name": "Can view cursor"}
    )
    Group.objects.create(name="support").permissions.add(view)

    new = migrate(AFTER)
    assert new.get_model("events", "EventType").objects.get().store_id == "abc123"
    assert new.get_model("events", "CommittedCursor").objects.get().offset == "5-0"
    support = new.get_model("auth", "Group").objects.get(name="support")
    assert [(p.content_type.model, p.codename) for p in support.permissions.all()] == [
        ("committedcursor", "view_committedcursor")
    ]

    migrate(BEFORE)  # and back
    assert old.get_model("events", "Cursor").objects.get().offset == "5-0"
