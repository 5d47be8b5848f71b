"""Schema checks: nothing a schema names is ever fetched, and a bad schema is a SchemaError.

tests.recording.internal_service stands in for an internal service that a remote `$ref`
or `$schema` would make the server call (SSRF).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from events.core.schemas import SchemaError, compiled_validator, parse_schema
from tests.recording import remote_schemas


def text(schema: dict[str, Any]) -> str:
    return orjson.dumps(schema).decode()


def test_a_schema_naming_a_remote_uri_is_refused_and_nothing_is_fetched(internal_service):
    for schema in remote_schemas(internal_service.url):
        with pytest.raises(SchemaError, match=r"not supported"):
            parse_schema(text(schema))
    assert internal_service.requests == []


def test_the_publishing_validator_never_fetches_either(internal_service):
    # A type stored before remote references were refused is compiled at publish time.
    for schema in remote_schemas(internal_service.url):
        with pytest.raises(SchemaError):
            compiled_validator(text(schema))
    assert internal_service.requests == []


@pytest.mark.parametrize(
    "meta_schema",
    [
        "http://json-schema.org/draft-04/schema#",
        "http://json-schema.org/draft-06/schema#",
        "http://json-schema.org/draft-07/schema",
        "https://json-schema.org/draft/2019-09/schema",
        "https://json-schema.org/draft/2020-12/schema",
    ],
)
def test_the_standard_meta_schemas_are_built_in(meta_schema):
    assert parse_schema(text({"$schema": meta_schema, "type": "object"}))["$schema"] == meta_schema


def test_local_references_resolve_within_the_schema():
    schema = {
        "definitions": {"money": {"type": "number", "minimum": 0}},
        "properties": {"amount": {"$ref": "#/definitions/money"}},
    }
    parse_schema(text(schema))
    assert not compiled_validator(text(schema)).is_valid({"amount": -1})


def test_a_local_reference_to_nothing_is_a_schema_error():
    with pytest.raises(SchemaError, match="cannot be compiled"):
        parse_schema(text({"properties": {"a": {"$ref": "#/definitions/missing"}}}))


def test_a_property_named_ref_and_data_that_looks_like_one_are_not_references():
    schema = {
        "properties": {"$ref": {"type": "string"}},
        "enum": [{"$ref": "http://example.invalid/x"}],
        "default": {"$ref": "http://example.invalid/y"},
    }
    assert parse_schema(text(schema)) == schema


@pytest.mark.parametrize("meta_schema", [["http://json-schema.org/draft-07/schema"], 7, ""])
def test_a_meta_schema_that_is_no_known_uri_is_a_schema_error(meta_schema):
    with pytest.raises(SchemaError, match="not supported"):
        parse_schema(text({"$schema": meta_schema}))


def test_a_schema_nested_too_deep_is_a_schema_error_not_a_crash():
    depth = 300
    nested = '{"properties": {"a": ' * depth + "{}" + "}}" * depth
    with pytest.raises(SchemaError):
        parse_schema(nested)
    with pytest.raises(SchemaError):
        parse_schema('{"allOf": ' + "[" * 1000 + "]" * 1000 + "}")
