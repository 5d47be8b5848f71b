"""The dashboard in a real headless Chromium against a real Daphne (`live_server`): an
operator logs in through the admin, publishes, and watches the rate move, a consumer's
session appear and leave, and the events arrive in the tail, which reads the reader
endpoint with the page's Django session (no token). See tests/browser.py for what it needs.

Screenshots of each page go to $DASHBOARD_SCREENSHOTS (a temporary folder unless set);
`DASHBOARD_SCREENSHOTS=docs/screenshots` refreshes the ones the README shows.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

from django.contrib.auth.models import User

from tests.browser import BROWSER, PASSWORD, operator_page, sync_api
from tests.helpers import business_event
from tests.live import open_stream, publish, subscribe

pytestmark = BROWSER

SCREENSHOTS = Path(
    os.environ.get("DASHBOARD_SCREENSHOTS")
    or Path(tempfile.gettempdir()) / "streamsite-dashboard-screenshots"
)
VIEWPORT = {"width": 1100, "height": 820}
expect = sync_api.expect


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"dashboard-{name}.png"
    page.set_viewport_size(VIEWPORT)
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000
    return path


def operator() -> None:
    # Rows first: Playwright's sync API runs an event loop, and Django refuses ORM calls
    # while one is running.
    User.objects.create_superuser("operator", "operator@example.com", PASSWORD)


def test_the_rate_moves_and_a_consumer_s_session_comes_and_goes(
    live_server, consumer_api, consumer_token, streams
):
    operator()
    subscription = subscribe(consumer_api, partitions=2)
    with operator_page(live_server.url) as page:
        page.goto("/admin/")
        page.get_by_role("link", name="View site").click()
        expect(page).to_have_url(re.compile(r"/dashboard/$"))
        expect(page.locator("#connection")).to_contain_text("live")
        row = page.locator("#event-types tbody tr", has_text="order.created")
        rate = row.locator("[data-field=rate]")
        expect(rate).to_have_text("0")
        expect(row.locator("[data-field=partitions]")).to_have_text("2")

        publish(consumer_api, 20)
        published = time.monotonic()
        expect(rate).not_to_have_text("0", timeout=2_000)
        assert time.monotonic() - published < 2.0
        expect(row.locator("[data-field=published]")).to_have_text("20")
        publish(consumer_api, 10, prefix="B")
        expect(row.locator("[data-field=size]")).to_have_text("30")
        subscription_row = page.locator("#subscriptions tbody tr")
        expect(subscription_row.locator("[data-field=unconsumed]")).to_have_text("30")
        expect(page.locator("#health")).to_contain_text("Redis")
        screenshot(page, "overview")

        stream = open_stream(streams, live_server, consumer_token, subscription)
        expect(subscription_row.locator("[data-field=sessions]")).to_have_text("1")
        subscription_row.get_by_role("link").click()
        expect(page).to_have_url(re.compile(f"/dashboard/subscriptions/{subscription}/$"))
        sessions = page.locator("#sessions tbody tr")
        expect(sessions).to_have_count(1)
        expect(sessions).to_contain_text(stream.id)
        owners = page.locator("#partitions tbody tr")
        expect(owners).to_have_count(2)
        for i in range(2):
            expect(owners.nth(i)).to_contain_text(stream.id)
        stream.wait(lambda s: len(s.events) == 30)
        screenshot(page, "subscription")

        stream.close()
        expect(sessions).to_have_count(0)
        expect(page.locator("#closes tbody")).to_contain_text("disconnected")

        # At a phone's width nothing but the tables' own boxes scrolls sideways; a page
        # that cannot reach the server says so.
        page.set_viewport_size({"width": 390, "height": 800})
        page.goto("/dashboard/")
        expect(page.locator("#event-types tbody tr")).to_have_count(1)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.route(re.compile(r"/dashboard/api/"), lambda route: route.abort())
        expect(page.locator("#connection")).to_contain_text("connection lost")


def test_published_events_appear_in_the_event_type_s_tail(live_server, consumer_api):
    operator()
    subscribe(consumer_api, partitions=2)
    with operator_page(live_server.url) as page:
        page.goto("/dashboard/")
        page.locator("#event-types a", has_text="order.created").click()
        expect(page.locator("h1")).to_have_text("order.created")
        expect(page.locator("#tail-status")).to_have_text("live")
        tail = page.locator("#tail tbody tr")

        publish(consumer_api, 2, prefix="T")
        expect(tail).to_have_count(2)
        expect(page.locator("#tail tbody")).to_contain_text('"order_number":"T-0"')

        page.fill("#tail-text", "t-1")  # the text filter hides the other rows
        expect(page.locator("#tail tbody tr:visible")).to_have_count(1)
        expect(page.locator("#tail-hidden")).to_have_text("1")
        page.fill("#tail-text", "")

        page.click("#tail-pause")
        publish(consumer_api, 1, prefix="P")
        expect(page.locator("#tail-pause")).to_have_text("Resume (1 new)")
        expect(tail).to_have_count(2)
        page.click("#tail-pause")
        expect(tail).to_have_count(3)
        expect(page.locator("#rate")).not_to_have_text("0")

        page.fill("#tail-topics", "eu.*")  # reconnects with the filter, after the last batch
        page.press("#tail-topics", "Enter")
        expect(page.locator("#tail-status")).to_have_text("live, topics eu.*")
        response = consumer_api.post(
            "/api/event-types/order.created/events",
            json=[topical("E-1", "eu.orders"), topical("U-1", "us.orders")],
        )
        assert response.status_code == 200, response.text
        expect(tail).to_have_count(4)
        expect(tail.first).to_contain_text("eu.orders")
        # published after U-1: by the time it shows, U-1 would have shown too
        assert consumer_api.post(
            "/api/event-types/order.created/events", json=[topical("E-2", "eu.orders")]
        ).is_success
        expect(tail).to_have_count(5)
        expect(page.locator("#tail tbody")).not_to_contain_text("U-1")
        expect(page.locator("#published")).to_have_text("6")  # the poll caught up too
        screenshot(page, "event-type")


def topical(order_number: str, topic: str) -> dict:
    event = business_event(order_number)
    event["metadata"]["topic"] = topic
    return event


def test_a_staff_user_linked_to_no_client_is_told_why_the_tail_is_refused(
    live_server, consumer_api
):
    User.objects.create_user("operator", password=PASSWORD, is_staff=True)
    subscribe(consumer_api, partitions=1)
    with operator_page(live_server.url) as page:
        page.goto("/dashboard/event-types/order.created/")
        expect(page.locator("#tail-status")).to_contain_text("is not linked to an API client")
        expect(page.locator("#tail-status")).to_have_class(re.compile("lost"))
        expect(page.locator("#connection")).to_contain_text("live")  # the rest still works
