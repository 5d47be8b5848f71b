"""Nakadi's dead-letter annotations end to end, over a real Daphne (issue 14): a consumer
that never commits a poison event sees it skipped after the annotated number of
deliveries with SKIP_EVENT, in ordered and shared mode; nothing is stored, and /metrics
counts it.
"""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from events.models import EventType
from events.store import keys
from events.store.connections import redis_client
from tests.end_to_end.test_delivery_counts import (
    crash_on_first_batch,
    dead_letters,
    publish_poison_first,
    stream,
)
from tests.helpers import subscribe_over_api
from tests.live import numbers

SKIP_AFTER_TWO = {
    "nakadi.zalando.org/subscription-max-event-send-count": "2",
    "nakadi.zalando.org/subscription-unprocessable-event-policy": "SKIP_EVENT",
}


def skipped_total(api: httpx.Client, subscription: str) -> float:
    """streamsite_events_skipped_total of the subscription, summed over its partitions."""
    response = api.get("/metrics")
    assert response.status_code == 200, response.text
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "streamsite_events_skipped_total"
        and sample.labels["subscription"] == subscription
    )


@pytest.mark.parametrize("mode", ["ordered", "shared"])
def test_a_poison_event_is_skipped_after_the_annotated_send_count(
    consumer_api, live_server, consumer_token, streams, mode
):
    subscription = subscribe_over_api(consumer_api, annotations=SKIP_AFTER_TWO, mode=mode)
    created = consumer_api.get(f"/api/subscriptions/{subscription}").json()
    assert (created["max_deliveries"], created["unprocessable_event_policy"]) == (2, "skip")
    publish_poison_first(consumer_api)
    assert skipped_total(consumer_api, subscription) == 0
    params = {"batch_limit": 1, "batch_flush_timeout": 1}
    for _ in range(2):  # the consumer fails on the poison event and never commits it
        failing = stream(streams, live_server, consumer_token, subscription, **params)
        assert crash_on_first_batch(failing, consumer_api, subscription) == ["poison-0"]

    healthy = stream(streams, live_server, consumer_token, subscription, **params)
    healthy.wait(lambda s: len(s.events) == 2, timeout=3)
    assert sorted(numbers(healthy.events)) == ["fine-0", "fine-1"]  # poison-0: skipped
    assert skipped_total(consumer_api, subscription) == 1
    store_id = EventType.objects.get(name="order.created").store_id
    assert redis_client().xlen(keys.dead_key(store_id, 0, subscription)) == 0
    assert dead_letters(consumer_api, subscription) == []  # nothing stored
