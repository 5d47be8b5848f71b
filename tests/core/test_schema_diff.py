"""Schema evolution rules (Nakadi's SchemaDiff), as plain functions."""

from __future__ import annotations

import orjson
import pytest

from events.core.schema_diff import Level, bump, evolve

BASE = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "maxLength": 10},
        "kind": {"type": "string", "enum": ["a", "b"]},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["id"],
}


def changed(**edits):
    schema = orjson.loads(orjson.dumps(BASE))
    for path, value in edits.items():
        node = schema
        *parents, last = path.split("__")
        for part in parents:
            node = node[part]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return schema


def judged(new, mode="forward", new_mode=None):
    """BASE at 1.0.0 in `mode`, evolved to `new` (and to `new_mode`, when given)."""
    return evolve(
        BASE,
        new,
        old_text=orjson.dumps(BASE).decode(),
        new_text=orjson.dumps(new).decode(),
        old_mode=mode,
        new_mode=new_mode or mode,
        version="1.0.0",
    )


def outcome(new, mode="forward", new_mode=None):
    result = judged(new, mode, new_mode)
    return "refused" if result.refused else result.version


@pytest.mark.parametrize(
    ("new", "forward", "compatible", "none"),
    [
        (changed(description="orders"), "1.0.1", "1.0.1", "1.0.1"),
        (changed(properties__note={"type": "string"}), "1.1.0", "1.1.0", "1.1.0"),
        (changed(required=["id", "kind"]), "1.1.0", "refused", "1.1.0"),
        (changed(properties__kind=None), "refused", "refused", "2.0.0"),
        (changed(properties__id__type="integer"), "refused", "refused", "2.0.0"),
        (changed(properties__id__maxLength=20), "refused", "refused", "2.0.0"),
        (changed(properties__kind__enum=["a", "b", "c"]), "refused", "refused", "2.0.0"),
        (changed(properties__tags__items=None), "refused", "refused", "2.0.0"),
        (changed(required=[]), "refused", "refused", "2.0.0"),
        (changed(additionalProperties=False), "refused", "refused", "2.0.0"),
        (changed(additionalProperties={"type": "string"}), "1.1.0", "refused", "1.1.0"),
    ],
)
def test_each_change_earns_its_version_or_is_refused(new, forward, compatible, none):
    assert (outcome(new, "forward"), outcome(new, "compatible"), outcome(new, "none")) == (
        forward,
        compatible,
        none,
    )


def test_an_identical_schema_keeps_its_version():
    assert outcome(changed()) == "1.0.0"


def test_a_textual_change_alone_is_a_patch():
    result = evolve(
        BASE,
        BASE,
        old_text=orjson.dumps(BASE).decode(),
        new_text=orjson.dumps(BASE, option=orjson.OPT_INDENT_2).decode(),
        old_mode="compatible",
        new_mode="compatible",
        version="1.2.3",
    )
    assert result.version == "1.2.4"


def test_a_refusal_names_the_path_of_each_breaking_change():
    result = judged(changed(properties__kind=None, properties__id__maxLength=5))
    assert sorted(c.path for c in result.refused) == [
        "#/properties/id/maxLength",
        "#/properties/kind",
    ]


@pytest.mark.parametrize(
    ("new", "version"),
    [
        # Judged by the levels of none, the original mode: anything goes.
        (changed(properties__kind=None), "2.0.0"),
        (changed(required=["id", "kind"]), "1.1.0"),
        (changed(description="orders"), "1.0.1"),
    ],
)
def test_none_to_forward_is_judged_as_none(new, version):
    assert outcome(new, "none", "forward") == version


@pytest.mark.parametrize(
    ("new", "version"),
    [
        # Only Nakadi's six kinds of change pass; levels are those of forward.
        (changed(description="orders", title="Order"), "1.0.1"),
        (changed(properties__note={"type": "string"}), "1.1.0"),
        (changed(required=["id", "kind"]), "1.1.0"),
        (changed(additionalProperties=False), "2.0.0"),
        (changed(properties__tags__additionalItems=False), "2.0.0"),
        (changed(properties__kind=None), "refused"),
        (changed(additionalProperties={"type": "string"}), "refused"),
        (changed(properties__id__maxLength=20), "refused"),
        (changed(properties__tags__items={}), "refused"),
    ],
)
def test_forward_to_compatible_allows_only_the_migration_changes(new, version):
    assert outcome(new, "forward", "compatible") == version


def test_a_refused_migration_names_every_change_outside_the_allowed_kinds():
    new = changed(properties__kind=None, properties__note={"type": "string"}, description="orders")
    result = judged(new, "forward", "compatible")
    assert [(c.kind, c.path) for c in result.refused] == [("PROPERTY_REMOVED", "#/properties/kind")]


def test_bump_resets_the_lower_parts():
    assert bump("1.4.2", Level.MAJOR) == "2.0.0"
    assert bump("1.4.2", Level.MINOR) == "1.5.0"
    assert bump("1.4.2", Level.PATCH) == "1.4.3"
    assert bump("1.4.2", Level.NO_CHANGES) == "1.4.2"
