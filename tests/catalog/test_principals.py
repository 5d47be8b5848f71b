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
