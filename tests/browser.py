"""The admin in a real headless Chromium, for the browser tests.

Needs Debian's `chromium` at /usr/bin/chromium; Playwright never downloads a browser here.
A test module that imports this one is skipped when Playwright is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "a long operator password"

# For a test module's `pytestmark`.
BROWSER = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: apt-get install chromium"
    ),
]
sync_api: Any = pytest.importorskip("playwright.sync_api")


@contextmanager
def operator_page(base_url: str) -> Iterator[Any]:
    """A page of a new browser, logged in to the admin at `base_url` as "operator" (whose
    superuser row, with PASSWORD, the test makes first); the browser closes on leaving.
    """
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(base_url=base_url, viewport={"width": 1280, "height": 900})
            page.set_default_timeout(15_000)
            page.goto("/admin/login/?next=/admin/")
            page.fill("#id_username", "operator")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            sync_api.expect(page.locator("#site-name")).to_have_text("Streamsite")
            yield page
        finally:
            browser.close()
