"""docs/architecture.md stays the map: every section the code cites exists, and every file
it names is there.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.no_redis

ARCHITECTURE = ROOT / "docs" / "architecture.md"


def anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")


def test_every_section_the_code_cites_exists():
    text = ARCHITECTURE.read_text()
    sections = {anchor(h) for h in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}
    cited = {
        (str(path.relative_to(ROOT)), name)
        for folder in ("events", "streamsite", "tests", "bench")
        for path in (ROOT / folder).rglob("*.py")
        for name in re.findall(r"docs/architecture\.md#([a-z0-9-]+)", path.read_text())
    }
    assert cited, "nothing cites the architecture"
    assert {(path, name) for path, name in cited if name not in sections} == set()


def test_every_file_it_names_exists():
    named = set(
        re.findall(r"`((?:events|streamsite|tests|bench)/[\w/.]+\.\w+)`", ARCHITECTURE.read_text())
    )
    assert named
    assert {path for path in named if not (ROOT / path).exists()} == set()
