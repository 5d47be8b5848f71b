"""Partition choice, as plain functions."""

from __future__ import annotations

import random
import uuid

import pytest

from events.core.partitioning import PartitioningError, choose_partition
from events.core.schemas import strict_schema


def test_hash_partitioning_is_stable_and_spreads_keys():
    chosen = [
        choose_partition({"k": f"key-{i}"}, strategy="hash", partition_count=8, key_fields=["k"])
        for i in range(800)
    ]
    again = [
        choose_partition({"k": f"key-{i}"}, strategy="hash", partition_count=8, key_fields=["k"])
        for i in range(800)
    ]
    assert chosen == again
    assert min(chosen.count(p) for p in range(8)) > 50


def test_hash_keys_may_be_nested_and_several():
    event = {"order": {"customer": "c-1"}, "shop": "s"}
    p = choose_partition(
        event, strategy="hash", partition_count=16, key_fields=["order.customer", "shop"]
    )
    assert p == choose_partition(
        dict(event), strategy="hash", partition_count=16, key_fields=["order.customer", "shop"]
    )
    with pytest.raises(PartitioningError, match=r"order\.missing"):
        choose_partition(event, strategy="hash", partition_count=16, key_fields=["order.missing"])


def test_random_partitioning_follows_the_eid_so_retries_land_together():
    eid = str(uuid.uuid4())
    first = choose_partition({}, strategy="random", partition_count=8, eid=eid)
    assert all(
        choose_partition({}, strategy="random", partition_count=8, eid=eid) == first
        for _ in range(20)
    )


def test_random_partitioning_without_an_eid_uses_the_generator():
    rng = random.Random(7)
    chosen = {
        choose_partition({}, strategy="random", partition_count=4, rng=rng) for _ in range(100)
    }
    assert chosen == {0, 1, 2, 3}


@pytest.mark.parametrize("given", ["4", "-1", "x", None, "01"])
def test_user_defined_partitions_must_exist(given):
    event = {"metadata": {"partition": given}}
    with pytest.raises(PartitioningError):
        choose_partition(event, strategy="user_defined", partition_count=4)


def test_strict_schemas_refuse_undeclared_fields_at_every_level():
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "object", "properties": {"b": {"type": "string"}}},
            "list": {"type": "array", "items": {"type": "object", "properties": {}}},
        },
    }
    strict = strict_schema(schema)
    assert strict["additionalProperties"] is False
    assert strict["properties"]["a"]["additionalProperties"] is False
    assert strict["properties"]["list"]["items"]["additionalProperties"] is False
    assert "additionalProperties" not in schema  # the original is left alone
