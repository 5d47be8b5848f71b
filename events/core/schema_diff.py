"""Schema evolution: what changed between two JSON schemas, and which version that earns.

A port of the rules of Nakadi's SchemaDiff (docs/nakadi-contract.md, section 2): every
change has a level, PATCH < MINOR < MAJOR, judged by the type's mode before the change;
`compatible` and `forward` refuse MAJOR changes, `none` takes anything, and a switch from
forward to compatible allows only a few kinds of change. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

PATCH_KEYWORDS = ("title", "description")
ATTRIBUTES = (
    "maxLength",
    "minLength",
    "maximum",
    "minimum",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "multipleOf",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxProperties",
    "minProperties",
)
COMPOSITIONS = ("allOf", "anyOf", "oneOf")


class Level(IntEnum):
    NO_CHANGES = 0
    PATCH = 1
    MINOR = 2
    MAJOR = 3


@dataclass(frozen=True)
class Change:
    kind: str
    path: str
    # The level under `forward`/`none`, and under `compatible`.
    forward: Level
    compatible: Level

    def level(self, mode: str) -> Level:
        return self.compatible if mode == "compatible" else self.forward


def _kind_of(schema: dict[str, Any]) -> str:
    for keyword in ("$ref", "enum", *COMPOSITIONS):
        if keyword in schema:
            return keyword
    declared = schema.get("type")
    if isinstance(declared, list):
        return "|".join(sorted(declared))
    if declared:
        return str(declared)
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return ""  # the empty schema: anything


def diff(old: Any, new: Any, path: str = "#") -> Iterator[Change]:
    """Every change from `old` to `new`, deepest paths included."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        if old != new:
            yield Change("TYPE_CHANGED", path, Level.MAJOR, Level.MAJOR)
        return
    for keyword in PATCH_KEYWORDS:
        if old.get(keyword) != new.get(keyword):
            yield Change(f"{keyword.upper()}_CHANGED", path, Level.PATCH, Level.PATCH)
    if old.get("id") != new.get("id"):
        yield Change("ID_CHANGED", path, Level.MAJOR, Level.MAJOR)
    old_kind, new_kind = _kind_of(old), _kind_of(new)
    if old_kind != new_kind:
        if old_kind == "":
            yield Change("TYPE_NARROWED", path, Level.MINOR, Level.MAJOR)
        else:
            yield Change("TYPE_CHANGED", path, Level.MAJOR, Level.MAJOR)
            return
    for attribute in ATTRIBUTES:
        if old.get(attribute) != new.get(attribute):
            yield Change("ATTRIBUTE_VALUE_CHANGED", f"{path}/{attribute}", Level.MAJOR, Level.MAJOR)
    if "pattern" in old and "pattern" in new and old["pattern"] != new["pattern"]:
        yield Change("ATTRIBUTE_VALUE_CHANGED", f"{path}/pattern", Level.MAJOR, Level.MAJOR)
    if "enum" in old and "enum" in new and _as_set(old["enum"]) != _as_set(new["enum"]):
        yield Change("ENUM_ARRAY_CHANGED", f"{path}/enum", Level.MAJOR, Level.MAJOR)
    if old.get("dependencies") != new.get("dependencies"):
        yield Change("DEPENDENCY_SCHEMA_CHANGED", f"{path}/dependencies", Level.MAJOR, Level.MAJOR)
    yield from _diff_object(old, new, path)
    yield from _diff_items(old, new, path)
    yield from _diff_compositions(old, new, path)
    for name in old.get("definitions", {}).keys() & new.get("definitions", {}).keys():
        yield from diff(
            old["definitions"][name], new["definitions"][name], f"{path}/definitions/{name}"
        )


def _as_set(values: list[Any]) -> set[str]:
    return {repr(value) for value in values}


def _diff_object(old: dict[str, Any], new: dict[str, Any], path: str) -> Iterator[Change]:
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name in old_props.keys() - new_props.keys():
        yield Change("PROPERTY_REMOVED", f"{path}/properties/{name}", Level.MAJOR, Level.MAJOR)
    if new_props.keys() - old_props.keys():
        yield Change("PROPERTIES_ADDED", f"{path}/properties", Level.MINOR, Level.MINOR)
    for name in old_props.keys() & new_props.keys():
        yield from diff(old_props[name], new_props[name], f"{path}/properties/{name}")
    old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
    if not old_required <= new_required:
        yield Change("REQUIRED_ARRAY_CHANGED", f"{path}/required", Level.MAJOR, Level.MAJOR)
    elif new_required > old_required:
        yield Change("REQUIRED_ARRAY_EXTENDED", f"{path}/required", Level.MINOR, Level.MAJOR)
    yield from _diff_additional(old, new, "additionalProperties", path)


def _diff_additional(
    old: dict[str, Any], new: dict[str, Any], keyword: str, path: str
) -> Iterator[Change]:
    before, after = old.get(keyword), new.get(keyword)
    where = f"{path}/{keyword}"
    kind = keyword.replace("additional", "ADDITIONAL_").upper()
    if isinstance(before, dict) and isinstance(after, dict):
        yield from diff(before, after, where)
    elif isinstance(before, dict):
        yield Change("SCHEMA_REMOVED", where, Level.MAJOR, Level.MAJOR)
    elif isinstance(after, dict):
        yield Change(f"{kind}_NARROWED", where, Level.MINOR, Level.MAJOR)
    elif (before is not False) != (after is not False):
        yield Change(f"{kind}_CHANGED", where, Level.MAJOR, Level.MAJOR)


def _diff_items(old: dict[str, Any], new: dict[str, Any], path: str) -> Iterator[Change]:
    before, after = old.get("items"), new.get("items")
    where = f"{path}/items"
    if before is None and after is None:
        return
    if (before is None) != (after is None) or type(before) is not type(after):
        yield Change("SCHEMA_REMOVED", where, Level.MAJOR, Level.MAJOR)
    elif isinstance(before, list) and isinstance(after, list):
        if len(before) != len(after):
            yield Change("NUMBER_OF_ITEMS_CHANGED", where, Level.MAJOR, Level.MAJOR)
        else:
            for index, (a, b) in enumerate(zip(before, after, strict=True)):
                yield from diff(a, b, f"{where}/{index}")
    else:
        yield from diff(before, after, where)
    yield from _diff_additional(old, new, "additionalItems", path)


def _diff_compositions(old: dict[str, Any], new: dict[str, Any], path: str) -> Iterator[Change]:
    for keyword in COMPOSITIONS:
        if keyword in old and keyword in new:
            if len(old[keyword]) != len(new[keyword]):
                yield Change("SUB_SCHEMA_CHANGED", f"{path}/{keyword}", Level.MAJOR, Level.MAJOR)
            else:
                for index, (a, b) in enumerate(zip(old[keyword], new[keyword], strict=True)):
                    yield from diff(a, b, f"{path}/{keyword}/{index}")
        elif keyword in old or keyword in new:
            yield Change("COMPOSITION_METHOD_CHANGED", path, Level.MAJOR, Level.MAJOR)


# The only changes Nakadi lets through when a type switches from forward to compatible:
# edits that leave every event valid under the stricter, closed schema.
FORWARD_TO_COMPATIBLE_CHANGES = frozenset(
    {
        "DESCRIPTION_CHANGED",
        "TITLE_CHANGED",
        "PROPERTIES_ADDED",
        "REQUIRED_ARRAY_EXTENDED",
        "ADDITIONAL_PROPERTIES_CHANGED",
        "ADDITIONAL_ITEMS_CHANGED",
    }
)


@dataclass(frozen=True)
class Evolution:
    version: str  # the new version; the old one when nothing changed
    refused: list[Change]  # the changes the modes do not allow; empty when allowed


def evolve(
    old: dict[str, Any],
    new: dict[str, Any],
    *,
    old_text: str,
    new_text: str,
    old_mode: str,
    new_mode: str,
    version: str,
) -> Evolution:
    """The version a schema change earns, or the changes refused (Nakadi's SES.evolve).

    Levels are those of `old_mode`, the type's mode before the change. Switching from
    forward to compatible allows only FORWARD_TO_COMPATIBLE_CHANGES; otherwise `compatible`
    and `forward` refuse an overall MAJOR change and `none` takes anything.
    """
    changes = list(diff(old, new))
    level = max((change.level(old_mode) for change in changes), default=Level.NO_CHANGES)
    if level == Level.NO_CHANGES and old_text != new_text:
        level = Level.PATCH
    if old_mode == "forward" and new_mode == "compatible":
        refused = [c for c in changes if c.kind not in FORWARD_TO_COMPATIBLE_CHANGES]
    elif old_mode != "none" and level == Level.MAJOR:
        refused = [c for c in changes if c.level(old_mode) == Level.MAJOR]
    else:
        refused = []
    if refused:
        return Evolution(version, refused)
    return Evolution(bump(version, level), [])


def bump(version: str, level: Level) -> str:
    major, minor, patch = (int(part) for part in version.split("."))
    if level == Level.MAJOR:
        return f"{major + 1}.0.0"
    if level == Level.MINOR:
        return f"{major}.{minor + 1}.0"
    if level == Level.PATCH:
        return f"{major}.{minor}.{patch + 1}"
    return version
