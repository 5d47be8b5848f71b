"""The dead letter admin in a real headless Chromium, against a real Daphne (`live_server`).

Needs Debian's `chromium` at /usr/bin/chromium; Playwright never downloads a browser here.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from django.contrib.auth.models import User

from events import streams, subscriptions
from events.connections import redis_client
from events.models import DeadLetter, EventType
from tests.helpers import business_event

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run"]
SCREENSHOT = Path("/tmp/admin-dead-letters.png")
PASSWORD = "a long operator password"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: apt-get install chromium"
    ),
]
sync_api = pytest.importorskip("playwright.sync_api")


def test_an_operator_replays_a_dead_letter_from_the_list(live_server, order_type: EventType):
    # Rows first: Playwright's sync API runs an event loop, and Django refuses ORM calls
    # while one is running.
    User.objects.create_superuser("operator", "operator@example.com", PASSWORD)
    body = {"owning_application": "billing", "event_types": ["order.created"]}
    billing = subscriptions.create_or_get(subscriptions.parse(body))[0]
    event = orjson.dumps(business_event("A-77")).decode()
    dead = DeadLetter.objects.create(
        subscription=billing,
        event_type=order_type,
        partition=1,
        offset="1795252632832-0",
        body=event,
        deliveries=11,
        reason="max_deliveries",
    )

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(
                base_url=live_server.url, viewport={"width": 1280, "height": 900}
            )
            page.set_default_timeout(15_000)
            page.goto("/admin/login/?next=/admin/")
            page.fill("#id_username", "operator")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            sync_api.expect(page.locator("#site-name")).to_have_text("Streamsite")

            page.goto(f"/admin/events/deadletter/{dead.pk}/change/")
            sync_api.expect(page.locator("#replay-dead-letter")).to_be_visible()

            page.goto(f"/admin/events/subscription/{billing.pk}/change/")
            page.get_by_role("link", name="Dead letters (1)").click()
            row = page.locator("#result_list tbody tr")
            sync_api.expect(row).to_have_count(1)
            sync_api.expect(row).to_contain_text("1795252632832-0")
            sync_api.expect(row).to_contain_text("max_deliveries")
            page.screenshot(path=str(SCREENSHOT), full_page=True)

            row.locator("input.action-select").check()
            page.select_option("select[name=action]", label="Replay to its subscription")
            page.get_by_role("button", name="Go", exact=True).click()
            sync_api.expect(page.locator("ul.messagelist")).to_have_text(
                "1 dead letter was replayed."
            )
            sync_api.expect(row).to_contain_text("replayed")

            page.goto(f"/admin/events/deadletter/{dead.pk}/change/")
            sync_api.expect(page.locator("#dead-letter-event")).to_contain_text('"A-77"')
            sync_api.expect(page.locator("#replay-dead-letter")).to_have_count(0)
        finally:
            browser.close()

    dead.refresh_from_db()
    assert dead.status == DeadLetter.Status.REPLAYED
    ((_, fields),) = redis_client().xrange(streams.log_key(order_type.stream_id, 1))
    assert fields == {b"e": event.encode(), b"r": str(billing.pk).encode()}
    assert SCREENSHOT.stat().st_size > 10_000
