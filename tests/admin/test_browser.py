"""The admin in a real headless Chromium, against a real Daphne (`live_server`).

See tests/browser.py for what it needs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.contrib.auth.models import User

from events.catalog.clients import create_client
from events.models import ApiToken, Client, EventType
from events.store import partitions
from tests.browser import BROWSER, PASSWORD, operator_page, sync_api
from tests.helpers import business_event, event_type_body

SCREENSHOT = Path("/tmp/admin-event-type.png")

pytestmark = BROWSER


def test_an_operator_sees_live_offsets_and_creates_a_token_that_works(live_server):
    # Rows first: Playwright's sync API runs an event loop, and Django refuses ORM calls
    # while one is running.
    User.objects.create_superuser("operator", "operator@example.com", PASSWORD)
    _, shop_token = create_client("shop", publish=["order.*"], read=["order.*"])
    billing = Client.objects.create(name="billing", description="The billing service")
    with live_server.client(shop_token) as http:
        assert http.post("/api/event-types", json=event_type_body(partitions=2)).status_code == 201
        events = [business_event(f"A-{i}") for i in range(4)]
        assert http.post("/api/event-types/order.created/events", json=events).status_code == 200
    event_type = EventType.objects.get(name="order.created")
    infos = partitions.partition_info(event_type.store_id, range(event_type.partition_count))
    assert sum(info.length for info in infos) == 4

    with operator_page(live_server.url) as page:
        page.goto(f"/admin/events/eventtype/{event_type.pk}/change/")
        table = page.locator("table#partitions")
        for info in infos:
            row = table.locator("tbody tr").nth(info.partition)
            sync_api.expect(row.locator("td")).to_have_text(
                [
                    str(info.partition),
                    info.oldest_available_offset,
                    info.newest_available_offset,
                    str(info.length),
                ]
            )
        sync_api.expect(page.get_by_role("heading", name="Schema history")).to_be_visible()
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        page.goto(f"/admin/events/client/{billing.pk}/change/")
        page.get_by_role("link", name="Create token").click()
        page.fill("#id_label", "browser test")
        page.get_by_role("button", name="Create token").click()
        sync_api.expect(page.get_by_text("will not be shown again")).to_be_visible()
        token = page.locator("input.new-token").input_value()

        page.goto(f"/admin/events/client/{billing.pk}/change/")
        sync_api.expect(page.locator("#tokens-group")).to_contain_text(token[:10])
        assert token not in page.content()

    assert SCREENSHOT.stat().st_size > 10_000
    stored = ApiToken.objects.get(client=billing, label="browser test")
    assert stored.digest == hashlib.sha256(token.encode()).hexdigest()
    with live_server.client(token) as http:
        assert http.get("/api/event-types").status_code == 200
