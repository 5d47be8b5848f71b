"""Whom an authorization section names, and the shapes it may have
(events/core/authorization.py)."""

from __future__ import annotations

import pytest

from events.core.authorization import (
    EVENT_TYPE_ROLES,
    SUBSCRIPTION_ROLES,
    Caller,
    check_authorization,
    names,
)
from events.core.problems import Problem


def attr(data_type: str, value: str) -> dict[str, str]:
    return {"data_type": data_type, "value": value}


SECTION = {
    "admins": [attr("service", "ops")],
    "readers": [attr("client", "audit"), attr("user", "alice"), attr("team", "payments")],
    "writers": [attr("service", "shop")],
}
SHOP = Caller(client="shop")
AUDIT = Caller(client="audit")
ALICE = Caller(client="dashboard", user="alice")
PAYMENTS = Caller(client="bob-client", user="bob", teams=frozenset({"payments", "staff"}))


def test_a_client_is_named_by_service_or_client_in_its_role_only() -> None:
    assert names(SECTION, "writers", SHOP)
    assert not names(SECTION, "readers", SHOP)
    assert not names(SECTION, "admins", SHOP)
    assert names(SECTION, "readers", AUDIT)  # Streamsite's own data_type: client
    assert names(SECTION, "admins", Caller(client="ops"))


def test_a_user_is_named_by_its_name_and_by_its_groups() -> None:
    assert names(SECTION, "readers", ALICE)
    assert names(SECTION, "readers", PAYMENTS)
    assert not names(SECTION, "readers", Caller(client="x", user="carol", teams=frozenset({"x"})))


def test_a_name_counts_only_under_its_own_data_type() -> None:
    assert not names(SECTION, "readers", Caller(client="alice"))  # alice is a user there
    assert not names(SECTION, "readers", Caller(user="audit"))  # and audit a client
    assert not names(SECTION, "writers", Caller(user="shop", teams=frozenset({"shop"})))


def test_the_wildcard_names_everyone() -> None:
    section = {**SECTION, "readers": [attr("*", "*")]}
    assert names(section, "readers", Caller())
    assert names(section, "readers", SHOP)
    assert not names(section, "writers", AUDIT)  # only in the role that holds it
    half = {**SECTION, "readers": [attr("service", "*"), attr("*", "shop")]}
    assert not names(half, "readers", AUDIT)  # only */* is the wildcard


def test_unknown_data_types_and_missing_sections_name_no_one() -> None:
    section = {**SECTION, "readers": [attr("realm", "shop"), attr("uid", "shop")]}
    assert not names(section, "readers", SHOP)
    assert not names(None, "readers", SHOP)
    assert not names({}, "readers", SHOP)
    assert not names(SECTION, "no-such-role", SHOP)


def test_a_section_of_the_right_shape_is_kept_as_sent() -> None:
    assert check_authorization({"authorization": SECTION}, EVENT_TYPE_ROLES) == SECTION
    assert check_authorization({}, SUBSCRIPTION_ROLES) is None
    assert check_authorization({"authorization": None}, SUBSCRIPTION_ROLES) is None


@pytest.mark.parametrize(
    "section",
    [
        "hello",
        {"admins": [attr("service", "a")], "readers": [attr("service", "a")]},
        {**SECTION, "readers": []},
        {**SECTION, "readers": [{"data_type": "service"}]},
        {**SECTION, "readers": [attr("service", "")]},
    ],
)
def test_other_shapes_are_422(section: object) -> None:
    with pytest.raises(Problem) as refused:
        check_authorization({"authorization": section}, EVENT_TYPE_ROLES)
    assert refused.value.status == 422


def test_a_role_that_names_an_attribute_twice_is_422_as_on_nakadi() -> None:
    section = {
        **SECTION,
        "readers": [attr("service", "a"), attr("team", "t"), attr("service", "a")],
        "writers": [attr("*", "*"), attr("*", "*")],
    }
    with pytest.raises(Problem) as refused:
        check_authorization({"authorization": section}, EVENT_TYPE_ROLES)
    assert refused.value.status == 422
    assert refused.value.detail == (
        "authorization property 'readers' contains duplicated attribute(s): service:a; "
        "authorization property 'writers' contains duplicated attribute(s): *:*"
    )
