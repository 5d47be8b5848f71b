"""The API description (OpenAPI, `events/api/openapi.yaml`) and the human docs page built
from it.
"""

from __future__ import annotations

import functools
import re
import shlex
from pathlib import Path
from typing import Any, cast

import orjson
import yaml
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_safe

from events.api.decorators import safe_view

OPENAPI_PATH = Path(__file__).with_name("openapi.yaml")
METHODS = ("get", "put", "post", "patch", "delete")
Node = dict[str, Any]  # a part of the OpenAPI document
_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")


@functools.cache
def openapi_text() -> str:
    """The OpenAPI document as written, read once per process."""
    return OPENAPI_PATH.read_text(encoding="utf-8")


@functools.cache
def openapi() -> Node:
    """The parsed OpenAPI document; shared, so callers must not change it."""
    return cast(Node, yaml.safe_load(openapi_text()))


@safe_view
def openapi_json(request: HttpRequest) -> HttpResponse:
    """The OpenAPI document as JSON; no token needed."""
    return HttpResponse(orjson.dumps(openapi()), content_type="application/json")


@safe_view
def openapi_yaml(request: HttpRequest) -> HttpResponse:
    """The OpenAPI document as YAML, as written; no token needed."""
    return HttpResponse(openapi_text(), content_type="application/yaml")


def markdown(text: str) -> SafeString:
    """The Markdown subset the document uses (paragraphs, `code`, **bold**, links) as HTML."""
    html = _LINK.sub(
        r'<a href="\2">\1</a>',
        _BOLD.sub(r"<strong>\1</strong>", _CODE.sub(r"<code>\1</code>", str(escape(text)))),
    )
    paragraphs = (p.strip() for p in html.split("\n\n"))
    return mark_safe("".join(f"<p>{p}</p>" for p in paragraphs if p))  # escaped above


def resolve(node: Node) -> Node:
    """`node`, or what its local `$ref` (`#/components/...`) points at."""
    while "$ref" in node:
        target: Any = openapi()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def type_name(schema: Node) -> str:
    """A schema's type as short HTML, such as `array of EventType` with a link to EventType;
    every part taken from the document is escaped.
    """
    if "$ref" in schema:
        name = escape(str(schema["$ref"]).rsplit("/", 1)[-1])
        return f'<a href="#schema-{name}">{name}</a>'
    for alternatives in ("oneOf", "anyOf"):
        if alternatives in schema:
            return " or ".join(type_name(option) for option in schema[alternatives])
    if "const" in schema:
        return escape(f'"{schema["const"]}"')
    kind = schema.get("type", "object" if "allOf" in schema or "properties" in schema else "any")
    if kind == "array":
        return f"array of {type_name(schema.get('items', {}))}"
    name = escape(" or ".join(kind) if isinstance(kind, list) else str(kind))
    if "format" in schema:
        name += escape(f" ({schema['format']})")
    if "enum" in schema:
        values = ("null" if value is None else str(value) for value in schema["enum"])
        name += escape(": " + ", ".join(values))
    return name


def _row(name: str, schema: Node, required: bool, note: str | None = None, **extra: Any) -> Node:
    """A table row of the docs page: a field's or a parameter's name, type and description."""
    note = note or schema.get("description") or resolve(schema).get("description") or ""
    row = {"name": name, "type": type_name(schema), "required": required, **extra}
    return {**row, "description": markdown(note)}


def _parameter(parameter: Node) -> Node:
    required, note = parameter.get("required", False), parameter.get("description")
    # A parameter is described by `schema`, or by `content` when its value is a JSON document.
    schema = parameter.get("schema") or next(iter(parameter["content"].values()))["schema"]
    return _row(parameter["name"], schema, required, note, location=parameter["in"])


def _fields(schema: Node) -> list[Node]:
    """The properties of an object schema (merging `allOf` parts), in order."""
    properties: dict[str, Node] = {}
    required: set[str] = set()
    for part in [resolve(p) for p in schema.get("allOf", [])] + [schema]:
        for name, prop in part.get("properties", {}).items():
            # A later part refines a property; its description falls back to the earlier one.
            earlier = properties.get(name, {}).get("description")
            properties[name] = {**prop, "description": prop.get("description") or earlier}
        required.update(part.get("required", []))
    return [_row(name, prop, name in required) for name, prop in properties.items()]


def _curl(base: str, path: str, method: str, operation: Node) -> str:
    """A short curl command for an operation, with the examples the document gives."""
    for parameter in operation["parameters"]:
        if parameter["in"] == "path":
            path = path.replace(f"{{{parameter['name']}}}", str(parameter.get("example", "x")))
    command = "curl -i" if method in ("get", "post") else f"curl -i -X {method.upper()}"
    lines = [f"{command} {shlex.quote(base + path)}"]
    if operation.get("security", openapi().get("security")):
        lines.append('-H "Authorization: Bearer $TOKEN"')  # left for the shell to expand
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None:
        example = orjson.dumps(body["example"]).decode() if "example" in body else "@body.json"
        lines += ["-H 'Content-Type: application/json'", f"-d {shlex.quote(example)}"]
    return " \\\n  ".join(lines)


def _media(content: Node) -> list[Node]:
    return [{"content_type": ct, "type": type_name(m["schema"])} for ct, m in content.items()]


def _response(status: str, response: Node) -> Node:
    content = _media(response.get("content", {}))
    return {"status": status, "description": markdown(response["description"]), "content": content}


def _operation(base: str, path: str, method: str, item: Node) -> Node:
    """One operation as the docs template shows it."""
    shared, own = item.get("parameters", []), item[method].get("parameters", [])
    parameters = [resolve(p) for p in shared + own]
    operation = {**item[method], "parameters": parameters}
    return {
        "id": operation["operationId"],
        "method": method.upper(),
        "path": path,
        "summary": operation.get("summary", ""),
        "description": markdown(operation.get("description", "")),
        "public": not operation.get("security", openapi().get("security")),
        "parameters": [_parameter(p) for p in parameters],
        "request": _media(operation.get("requestBody", {}).get("content", {})),
        "responses": [
            _response(status, resolve(r)) for status, r in operation["responses"].items()
        ],
        "curl": _curl(base, path, method, operation),
    }


def reference(base: str) -> Node:
    """The docs page's context: the operations grouped by their first tag, and the schemas."""
    document = openapi()
    groups = {
        tag["name"]: {**tag, "description": markdown(tag.get("description", "")), "operations": []}
        for tag in document.get("tags", [])
    }
    for path, item in document["paths"].items():
        for method in (m for m in METHODS if m in item):
            operation = _operation(base, path, method, item)
            groups[item[method]["tags"][0]]["operations"].append(operation)
    schemas = [
        {**_row(name, schema, False), "fields": _fields(schema)}
        for name, schema in document["components"]["schemas"].items()
    ]
    info = {**document["info"], "description": markdown(document["info"].get("description", ""))}
    return {"info": info, "groups": list(groups.values()), "schemas": schemas}


@require_safe
def docs_page(request: HttpRequest) -> HttpResponse:
    """The API reference for humans, rendered from the OpenAPI document; no token needed."""
    base = request.build_absolute_uri("/").rstrip("/")
    return render(request, "docs.html", reference(base))


def home(request: HttpRequest) -> HttpResponse:
    """The site's root leads to the docs."""
    return redirect("docs")
