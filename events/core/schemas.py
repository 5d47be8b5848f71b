"""Event schemas: checking a schema when it is defined, compiling it once for publishing,
and the strict form that Nakadi's `compatible` mode validates with.

Nothing here fetches a URI: a `$ref` must point into the schema itself ("#..."), and
`$schema` may only name a meta-schema that jsonschema_rs has built in. A remote reference
would make the server send a request of the producer's choosing (SSRF), and block the
event loop while it waits.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, NoReturn

import jsonschema_rs
import orjson

# Compiled once per schema; `is_valid` is the hot path, `iter_errors` only for a refusal.
Validator = jsonschema_rs.Validator

# The meta-schemas jsonschema_rs knows without fetching them, as schemas name them.
META_SCHEMAS = frozenset(
    f"{scheme}://json-schema.org/{draft}/schema{fragment}"
    for scheme in ("http", "https")
    for draft in ("draft-04", "draft-06", "draft-07", "draft/2019-09", "draft/2020-12")
    for fragment in ("", "#")
)
_REFERENCE_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
# Keywords whose value is a map of names to subschemas, and keywords holding plain data.
_SCHEMA_MAPS = frozenset(
    {"properties", "patternProperties", "definitions", "$defs", "dependencies", "dependentSchemas"}
)
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples"})


class SchemaError(ValueError):
    """The schema itself is unusable; the message says why."""


def parse_schema(text: str) -> dict[str, Any]:
    """The schema object of a JSON string, checked against its JSON-schema meta-schema.

    SchemaError when it is not JSON, not a valid schema, or refers to anything remote.
    """
    try:
        schema = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise SchemaError(f"the schema is not valid JSON: {error}") from None
    if not isinstance(schema, dict):
        raise SchemaError("the schema must be a JSON object")
    _check_local(schema)
    try:
        jsonschema_rs.meta.validate(schema, registry=_offline_registry())
    except jsonschema_rs.ValidationError as error:
        raise SchemaError(f"the schema is invalid: {error.message}") from None
    except (ValueError, jsonschema_rs.ReferencingError) as error:
        # An unknown meta-schema, or a schema nested too deep for jsonschema_rs to read.
        raise SchemaError(f"the schema cannot be read: {error}") from None
    compiled_validator(text)
    return schema


@functools.lru_cache(maxsize=1024)
def compiled_validator(text: str) -> Validator:
    """A validator for the schema text, compiled once per process; SchemaError if it can't be.

    Formats are checked; a schema that names no `$schema` is read as draft 7. Every
    reference is resolved within the schema: nothing is ever fetched.
    """
    schema = orjson.loads(text)
    try:
        if "$schema" in schema:
            return jsonschema_rs.validator_for(
                schema, validate_formats=True, retriever=_refuse_retrieval
            )
        return jsonschema_rs.Draft7Validator(
            schema, validate_formats=True, retriever=_refuse_retrieval
        )
    except (ValueError, jsonschema_rs.ReferencingError) as error:
        # jsonschema_rs.ValidationError is a ValueError: how a failed `$ref` is reported.
        raise SchemaError(f"the schema cannot be compiled: {error}") from None


def _refuse_retrieval(uri: str) -> NoReturn:
    """The retriever of every validator and registry: no URI is ever fetched."""
    raise SchemaError(f"external url reference is not supported: {uri}")


def _offline_registry() -> jsonschema_rs.Registry:
    return jsonschema_rs.Registry([], retriever=_refuse_retrieval)


def _check_local(schema: dict[str, Any]) -> None:
    """SchemaError unless `$schema` is a built-in meta-schema and every reference is local."""
    meta = schema.get("$schema")
    if meta is not None and (not isinstance(meta, str) or meta not in META_SCHEMAS):
        raise SchemaError(
            f"$schema {meta!r} is not supported: use a JSON-schema draft-04, -06, -07, "
            "2019-09 or 2020-12 meta-schema URI"
        )
    for reference in _references(schema):
        if not reference.startswith("#"):
            raise SchemaError(
                f"external url reference is not supported: {reference!r} "
                '(a $ref must point into the schema, "#...")'
            )


def _references(schema: Any) -> Iterator[str]:
    """Every reference string anywhere in a schema (property names are not references).

    Iterative: a schema nested deeper than Python's recursion limit is refused later by
    the meta-schema check, not by a RecursionError here.
    """
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key in _REFERENCE_KEYWORDS and isinstance(value, str):
                    yield value
                elif key in _SCHEMA_MAPS and isinstance(value, dict):
                    stack.extend(value.values())
                elif key not in _DATA_KEYWORDS:
                    stack.append(value)


def first_error(validator: Validator, instance: Any, at: str = "") -> str | None:
    """None when `instance` is valid; else its first error and where it is, as a JSON
    pointer (below `at` when `instance` is part of a larger document).
    """
    if validator.is_valid(instance):
        return None
    error = next(iter(validator.iter_errors(instance)))
    parts = [at] if at else []
    parts += [str(part) for part in error.instance_path]
    return f"{error.message} (at /{'/'.join(parts)})"


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
