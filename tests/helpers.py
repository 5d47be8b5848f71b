"""Builders shared by the tests: event types and events as a producer would send them."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import orjson

from events.store import keys
from events.store.clock import now_ms
from events.store.connections import redis_client

if TYPE_CHECKING:
    from events.models import EventType, Subscription

ORDER_SCHEMA = {
    "type": "object",
    "properties": {
        "order_number": {"type": "string"},
        "amount": {"type": "number", "minimum": 0},
    },
    "required": ["order_number"],
}


def event_type_body(
    name: str = "order.created",
    *,
    category: str = "business",
    json_schema: dict[str, Any] | None = None,
    partitions: int = 1,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "owning_application": "shop",
        "category": category,
        "enrichment_strategies": [] if category == "undefined" else ["metadata_enrichment"],
        "partition_strategy": "random",
        "schema": {
            "type": "json_schema",
            "schema": orjson.dumps(json_schema or ORDER_SCHEMA).decode(),
        },
        "default_statistic": {
            "messages_per_minute": 100,
            "message_size": 100,
            "read_parallelism": partitions,
            "write_parallelism": partitions,
        },
    }
    body.update(extra)
    return body


def business_event(
    order_number: str = "A-1", eid: str | None = None, **fields: Any
) -> dict[str, Any]:
    return {
        "metadata": {"eid": eid or str(uuid.uuid4()), "occurred_at": "2026-11-21T10:00:00Z"},
        "order_number": order_number,
        **fields,
    }


def event_type_row(
    name: str,
    *,
    owning_application: str = "shop",
    category: str = "business",
    schema: str = '{"type": "object"}',
    retention_time_ms: int = 3_600_000,
    **fields: Any,
) -> EventType:
    """An event type written straight to the database, without the API's checks."""
    from events.models import EventType

    return EventType.objects.create(
        name=name,
        owning_application=owning_application,
        category=category,
        schema=schema,
        retention_time_ms=retention_time_ms,
        **fields,
    )


def log_key(name: str, partition: int) -> str:
    """The Redis stream of a partition of the event type called `name`."""
    from events.models import EventType

    return keys.log_key(EventType.objects.get(name=name).store_id, partition)


def subscribe(*names: str, read_from: str = "begin", group: str = "default") -> Subscription:
    """The billing application's subscription to `names` (from the beginning unless told),
    made as the API makes it.
    """
    from events.catalog import subscriptions

    body = {
        "owning_application": "billing",
        "event_types": list(names),
        "read_from": read_from,
        "consumer_group": group,
    }
    return subscriptions.create_or_get(subscriptions.parse(body))[0]


def subscribe_over_api(api: Any, partitions: int = 1, **fields: Any) -> str:
    """Create `order.created` with `partitions` and a subscription to it from the beginning,
    over the API (`api` is an httpx client of a live server); returns the subscription id.
    """
    response = api.post("/api/event-types", json=event_type_body(partitions=partitions))
    assert response.status_code == 201, response.text
    body = {
        "owning_application": "shop",
        "event_types": ["order.created"],
        "read_from": "begin",
        **fields,
    }
    response = api.post("/api/subscriptions", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def lasting(ms: int = 10_000) -> int:
    """An expiry `ms` from now on the Redis server's clock: a session's, for its leases."""
    return now_ms(redis_client()) + ms
