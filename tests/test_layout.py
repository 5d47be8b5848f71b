"""The layout holds (docs/architecture.md#packages): imports point one way, from the edge to
the core; no two modules import each other; the core reaches nothing outside itself; Lua
runs one way; no module outgrows one concept. Read with `ast`, nothing is imported.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
CLIENT = ROOT / "client" / "streamsite_client"
# The client is installable on its own: the standard library and httpx, nothing else.
CLIENT_MAY_IMPORT = {"httpx", "streamsite_client"}

# Lower numbers are nearer the core; a module may import its own layer and those below.
LAYERS = {
    "events.core": 0,
    "events.store": 1,
    "events.models": 2,
    "events.catalog": 3,
    "events.streaming": 4,
    "events.api": 5,
    "events.admin": 5,
    "events.jobs": 5,
    "events.dashboard": 5,
    "events.apps": 6,
    "events.management": 6,
    "events.migrations": 6,
}
EDGE = {"events.api", "events.admin", "events.jobs", "events.dashboard"}  # never each other
CORE_MAY_NOT = ("redis", "django.db", "django.http", "channels", "asgiref", "streamsite")
LUA_RUNNERS = ("register_script", ".eval(", "evalsha", "script_load")
MAX_LINES = 400


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(EVENTS.rglob("*.py")):
        if "migrations" in path.parts or path == EVENTS / "__init__.py":
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


KNOWN = {name for name, _ in modules()}


def imports(name: str, path: Path) -> set[str]:
    """Every module `name` imports, also inside functions and under TYPE_CHECKING."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], base]
                ).rstrip(".")
            # `from events.store import keys` imports the module events.store.keys; the
            # package itself only where a name is not a module of it
            submodules = {f"{base}.{alias.name}" for alias in node.names} & KNOWN
            found.update(submodules)
            if len(submodules) < len(node.names):
                found.add(base)
    return {module for module in found if module in KNOWN and module != name}


def layer_of(module: str) -> tuple[str, int]:
    for prefix, layer in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            return prefix, layer
    raise AssertionError(f"{module} is in no layer: add its package to LAYERS")


GRAPH = {name: imports(name, path) for name, path in modules()}


@pytest.mark.no_redis
def test_imports_point_from_the_edge_to_the_core():
    wrong = []
    for importer, imported in sorted(GRAPH.items()):
        package, layer = layer_of(importer)
        for module in sorted(imported):
            other, other_layer = layer_of(module)
            if other_layer > layer or (package in EDGE and other in EDGE and other != package):
                wrong.append(f"{importer} -> {module}")
    assert wrong == []


@pytest.mark.no_redis
def test_no_modules_import_each_other():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in GRAPH.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    assert cycles == []


@pytest.mark.no_redis
def test_the_core_needs_no_redis_database_or_request():
    reaching = []
    for name, path in modules():
        if layer_of(name)[0] != "events.core":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            reaching += [f"{name}: {n}" for n in names if n.startswith(CORE_MAY_NOT)]
    assert reaching == []


@pytest.mark.no_redis
def test_lua_runs_only_through_the_store_s_scripts():
    runners = [
        f"{name}: {runner}"
        for name, path in modules()
        if name != "events.store.scripts"
        for runner in LUA_RUNNERS
        if runner in path.read_text()
    ]
    assert runners == []


@pytest.mark.no_redis
def test_no_module_is_over_400_lines():
    long = {
        str(path.relative_to(ROOT)): lines
        for path in [
            *EVENTS.rglob("*.py"),
            *(ROOT / "streamsite").rglob("*.py"),
            *CLIENT.rglob("*.py"),
        ]
        if "migrations" not in path.parts
        and (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


@pytest.mark.no_redis
def test_the_client_imports_only_the_standard_library_and_httpx():
    """No Django, no `events`: the client speaks the public HTTP API, as any service would."""
    reaching = []
    for path in sorted(CLIENT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            reaching += [
                f"{path.name}: {name}"
                for name in names
                if name.split(".")[0] not in CLIENT_MAY_IMPORT | sys.stdlib_module_names
            ]
    assert reaching == []
