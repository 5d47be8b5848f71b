"""Event schemas: checking a schema when it is defined, compiling it once for publishing,
and deciding whether a schema change is allowed under the type's compatibility mode.
"""

from __future__ import annotations

import functools
from typing import Any

import jsonschema_rs
import orjson

# Compiled once per schema; `is_valid` is the hot path, `iter_errors` only for a refusal.
Validator = jsonschema_rs.Validator


class SchemaError(ValueError):
    """The schema itself is unusable; the message says why."""


def parse_schema(text: str) -> dict[str, Any]:
    """The schema object of a JSON string, checked against its JSON-schema meta-schema."""
    try:
        schema = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise SchemaError(f"the schema is not valid JSON: {error}") from None
    if not isinstance(schema, dict):
        raise SchemaError("the schema must be a JSON object")
    try:
        jsonschema_rs.meta.validate(schema)
    except jsonschema_rs.ValidationError as error:
        raise SchemaError(f"the schema is invalid: {error.message}") from None
    try:
        compiled_validator(text)
    except (ValueError, jsonschema_rs.ReferencingError) as error:
        raise SchemaError(f"the schema cannot be compiled: {error}") from None
    return schema


@functools.lru_cache(maxsize=1024)
def compiled_validator(text: str) -> Validator:
    """A validator for the schema text, compiled once per process.

    Formats are checked; a schema that names no `$schema` is read as draft 7.
    """
    schema = orjson.loads(text)
    if "$schema" in schema:
        return jsonschema_rs.validator_for(schema, validate_formats=True)
    return jsonschema_rs.Draft7Validator(schema, validate_formats=True)


def first_error(validator: Validator, instance: Any) -> str | None:
    """None when `instance` is valid; else its first error and where it is."""
    if validator.is_valid(instance):
        return None
    error = next(iter(validator.iter_errors(instance)))
    where = "/".join(str(part) for part in error.instance_path)
    return f"{error.message} (at /{where})"


def strict_schema(schema: Any) -> Any:
    """A copy of `schema` that refuses undeclared fields, as Nakadi's `compatible` mode does:
    `additionalProperties: false` on every object schema, `additionalItems: false` on arrays.
    """
    if isinstance(schema, list):
        return [strict_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        key: strict_schema(value) if key in _SUBSCHEMA_KEYWORDS else value
        for key, value in schema.items()
    }
    for key in ("properties", "definitions", "dependencies"):
        if isinstance(schema.get(key), dict):
            out[key] = {name: strict_schema(sub) for name, sub in schema[key].items()}
    object_like = schema.get("type") == "object" or any(
        key in schema for key in ("properties", "required", "minProperties", "maxProperties")
    )
    if object_like or not schema:
        out["additionalProperties"] = False
    if schema.get("type") == "array" or "items" in schema:
        out["additionalItems"] = False
    return out


_SUBSCHEMA_KEYWORDS = frozenset({"items", "allOf", "anyOf", "oneOf"})
