"""Which dotted paths a schema declares: pure, no database or Redis."""

from __future__ import annotations

import pytest

from events.core.schema_paths import defines, event_defines

SCHEMA = {
    "definitions": {
        "node": {"properties": {"next": {"$ref": "#/definitions/node"}, "id": {}}},
        "a/b": {"properties": {"escaped": {}}},
    },
    "properties": {
        "chain": {"$ref": "#/definitions/node"},
        "odd": {"$ref": "#/definitions/a~1b"},
        "remote": {"$ref": "https://example.com/schema.json"},
    },
    "allOf": [{"properties": {"customer": {"oneOf": [{"properties": {"id": {}}}]}}}],
}


@pytest.mark.parametrize(
    ("path", "declared"),
    [
        ("chain.next.next.id", True),  # a self-reference, followed as deep as the path goes
        ("chain.previous", False),
        ("odd.escaped", True),  # "~1" in a JSON pointer is "/"
        ("customer.id", True),
        ("customer.name", False),
        ("remote.anything", False),  # nothing is fetched
    ],
)
def test_it_follows_properties_compositions_and_local_references(path, declared):
    assert defines(SCHEMA, path.split(".")) is declared


@pytest.mark.parametrize(
    ("category", "path", "declared"),
    [
        ("data", "data.customer.id", True),
        ("data", "customer.id", False),  # a data event's fields sit under `data`
        ("data", "data_op", True),
        ("data", "metadata.occurred_at", True),
        ("business", "customer.id", True),
        ("business", "metadata.eid", True),
        ("business", "metadata.nope", False),
        ("undefined", "metadata.eid", False),  # undefined events have no metadata of ours
    ],
)
def test_the_whole_event_has_its_category_s_envelope(category, path, declared):
    assert event_defines(category, SCHEMA, path.split(".")) is declared
