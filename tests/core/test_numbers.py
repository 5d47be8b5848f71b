"""Whole numbers in JSON bodies (events/core/numbers.py)."""

from __future__ import annotations

import pytest

from events.core.numbers import whole_number


@pytest.mark.parametrize(("value", "number"), [(0, 0), (-3, -3), (1746.0, 1746), (1e3, 1000)])
def test_it_takes_what_json_schema_calls_an_integer(value, number):
    assert whole_number(value) == number
    assert type(whole_number(value)) is int


@pytest.mark.parametrize("value", [True, False, 1.5, float("nan"), float("inf"), "3", None, [1]])
def test_it_takes_nothing_else(value):
    assert whole_number(value) is None
