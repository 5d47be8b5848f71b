"""A principal's grants and a stream token's scope (events/catalog/auth.py): what a scoped
principal may do is the intersection of both.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from events.catalog.auth import Principal, Scope
from events.core.problems import Problem

pytestmark = pytest.mark.no_redis

SHOP = Principal(1, "shop", False, (("read", "order.*"), ("consume", "order.*")))
OPS = Principal(2, "ops", True, ())


def test_a_read_scope_allows_reading_its_types_within_the_grants() -> None:
    scoped = replace(SHOP, scope=Scope("read", patterns=("order.created",)))
    assert scoped.may("read", "order.created")
    assert not scoped.may("read", "order.shipped")  # granted, but not asked for
    assert not scoped.may("consume", "order.created")  # a read token consumes nothing
    assert not scoped.may("publish", "order.created")
    with pytest.raises(Problem) as refused:
        scoped.require("read", "order.shipped")
    assert refused.value.status == 403
    assert "allows reading order.created only" in refused.value.detail


def test_a_read_scope_never_widens_the_grants() -> None:
    scoped = replace(SHOP, scope=Scope("read", patterns=("*",)))
    assert scoped.may("read", "order.created")
    assert not scoped.may("read", "payment.done")


def test_an_admin_s_token_is_still_bound_by_its_scope() -> None:
    scoped = replace(OPS, scope=Scope("read", patterns=("order.*",)))
    assert scoped.may("read", "order.created")
    assert not scoped.may("read", "payment.done")
    with pytest.raises(Problem):
        scoped.require_admin("create clients")


def test_a_consume_scope_names_one_subscription() -> None:
    scoped = replace(SHOP, scope=Scope("consume", subscription="sub-1"))
    scoped.require_subscription("sub-1")
    assert scoped.may("consume", "order.created")
    assert not scoped.may("read", "order.created")
    with pytest.raises(Problem) as refused:
        scoped.require_subscription("sub-2")
    assert refused.value.status == 403
    SHOP.require_subscription("sub-2")  # no scope: the grants alone decide


def test_covering_a_glob_needs_a_grant_that_matches_the_glob_itself() -> None:
    assert SHOP.covers("read", "order.*")
    assert SHOP.covers("read", "order.created")
    assert not SHOP.covers("read", "*")
    assert not SHOP.covers("read", "order*")
    assert OPS.covers("read", "*")


def test_whom_a_token_acts_as() -> None:
    assert SHOP.subject == "client:1"
    assert Principal(None, "root", True, (), user_id=7).subject == "user:7"


# Authorization sections add to the grants (events/core/authorization.py).

SECTION = {
    "admins": [{"data_type": "service", "value": "ops-team"}],
    "readers": [{"data_type": "service", "value": "audit"}, {"data_type": "team", "value": "t"}],
    "writers": [{"data_type": "client", "value": "audit"}],
}
AUDIT = Principal(3, "audit", False, ())  # no grants at all
ALICE = Principal(4, "dashboard", False, (), user_id=9, user_name="alice", teams=frozenset("t"))


def test_a_section_allows_its_roles_actions_without_a_grant() -> None:
    for action in ("read", "consume", "publish"):
        assert AUDIT.may(action, "payment.done", SECTION)  # a reader and a writer
        assert not AUDIT.may(action, "payment.done")  # the section decides, not the name
    AUDIT.require("consume", "payment.done", SECTION)
    assert not AUDIT.administers(SECTION)
    assert Principal(5, "ops-team", False, ()).administers(SECTION)
    assert OPS.administers(None)  # an admin client needs no section


def test_a_user_is_named_through_its_groups() -> None:
    assert ALICE.may("read", "payment.done", SECTION)
    assert not ALICE.may("publish", "payment.done", SECTION)
    with pytest.raises(Problem) as refused:
        ALICE.require("publish", "payment.done", SECTION)
    assert refused.value.status == 403
    assert refused.value.detail == (
        "Client 'dashboard' has no publish grant for 'payment.done', and the event type's "
        "authorization does not name it among its writers."
    )


def test_a_user_of_no_client_is_not_named_as_a_client() -> None:
    root = Principal(None, "audit", True, (), user_id=1, user_name="audit")
    assert not replace(root, is_admin=False).listed(SECTION, "readers")


def test_a_stream_token_stays_within_its_scope_whatever_a_section_says() -> None:
    everyone = {**SECTION, "readers": [{"data_type": "*", "value": "*"}]}
    scoped = replace(AUDIT, scope=Scope("read", patterns=("payment.done",)))
    assert scoped.may("read", "payment.done", everyone)
    assert not scoped.may("read", "payment.refunded", everyone)
    assert not scoped.may("consume", "payment.done", everyone)
    assert not scoped.may("publish", "payment.done", SECTION)
    assert not replace(OPS, scope=Scope("read", patterns=("*",))).administers(SECTION)
    with pytest.raises(Problem) as refused:
        scoped.require("read", "payment.refunded", everyone)
    assert "allows reading payment.done only" in refused.value.detail
