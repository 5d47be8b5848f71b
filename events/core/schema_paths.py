"""Which dotted paths (`customer.id`) a JSON schema declares: the check of hash partition
keys and ordering keys. Pure functions, no I/O.
"""

from __future__ import annotations

from typing import Any

from events.core.metadata import METADATA_SCHEMA


def defines(schema: dict[str, Any], path: list[str]) -> bool:
    """Whether the user schema declares the property at `path`."""
    return _defines_at(schema, path, schema)


def event_defines(category: str, schema: dict[str, Any], path: list[str]) -> bool:
    """Whether the whole event declares the property at `path`: for `data` events the user
    schema sits under `data`, beside `data_op`, `data_type` and `metadata`; business events
    have `metadata` beside their own fields.
    """
    envelope: dict[str, Any] = {"metadata": METADATA_SCHEMA}
    if category == "data":
        if path[0] == "data":
            return _defines_at(schema, path[1:], schema)
        envelope |= {"data_op": {"type": "string"}, "data_type": {"type": "string"}}
        return _defines_at({"properties": envelope}, path, {})
    if category == "business" and path[0] == "metadata":
        return _defines_at({"properties": envelope}, path, {})
    return _defines_at(schema, path, schema)


def _defines_at(
    schema: Any, path: list[str], root: dict[str, Any], seen: frozenset[str] = frozenset()
) -> bool:
    """Whether `schema` declares the property at `path`, through nested `properties`, the
    subschemas of allOf/anyOf/oneOf (as everit's `definesProperty` does) and local `$ref`s.
    `seen` are the references followed for this same path: a cycle among them ends.
    """
    if not path:
        return True
    if not isinstance(schema, dict):
        return False
    reference = schema.get("$ref")
    if isinstance(reference, str) and reference not in seen:
        target = _resolve(root, reference)
        if target is not None and _defines_at(target, path, root, seen | {reference}):
            return True
    properties = schema.get("properties")
    head, rest = path[0], path[1:]
    if (
        isinstance(properties, dict)
        and head in properties
        and _defines_at(properties[head], rest, root)  # a shorter path: any $ref again
    ):
        return True
    return any(
        _defines_at(subschema, path, root, seen)
        for keyword in ("allOf", "anyOf", "oneOf")
        if isinstance(schema.get(keyword), list)
        for subschema in schema[keyword]
    )


def _resolve(root: dict[str, Any], reference: str) -> Any:
    """What a local JSON pointer `$ref` ("#/definitions/x") points at, or None."""
    if not reference.startswith("#"):
        return None
    node: Any = root
    for part in filter(None, reference[1:].split("/")):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
