"""The dead letter admin in a real headless Chromium, against a real Daphne (`live_server`).

See tests/browser.py for what it needs.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from django.contrib.auth.models import User

from events.catalog import subscriptions
from events.models import DeadLetter, EventType
from events.store import keys
from events.store.connections import redis_client
from tests.browser import BROWSER, PASSWORD, operator_page, sync_api
from tests.helpers import business_event

SCREENSHOT = Path("/tmp/admin-dead-letters.png")

pytestmark = BROWSER


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

    with operator_page(live_server.url) as page:
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
        sync_api.expect(page.locator("ul.messagelist")).to_have_text("1 dead letter was replayed.")
        sync_api.expect(row).to_contain_text("replayed")

        page.goto(f"/admin/events/deadletter/{dead.pk}/change/")
        sync_api.expect(page.locator("#dead-letter-event")).to_contain_text('"A-77"')
        sync_api.expect(page.locator("#replay-dead-letter")).to_have_count(0)

    dead.refresh_from_db()
    assert dead.status == DeadLetter.Status.REPLAYED
    ((_, fields),) = redis_client().xrange(keys.log_key(order_type.store_id, 1))
    assert fields == {b"e": event.encode(), b"r": str(billing.pk).encode()}
    assert SCREENSHOT.stat().st_size > 10_000
