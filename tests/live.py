"""Helpers for tests against a live server: subscriptions over the API, publishing, streams
and their owners.
"""

from __future__ import annotations

from tests.helpers import business_event, event_type_body
from tests.streams import Stream

LEASE_SECONDS = 6.0  # events.streaming.ordered_session.SESSION_TTL_MS


def subscribe(consumer_api, partitions: int) -> str:
    assert (
        consumer_api.post(
            "/api/event-types", json=event_type_body(partitions=partitions)
        ).status_code
        == 201
    )
    body = {"owning_application": "shop", "event_types": ["order.created"], "read_from": "begin"}
    return str(consumer_api.post("/api/subscriptions", json=body).json()["id"])


def publish(consumer_api, count: int, prefix: str = "A") -> list[str]:
    numbers = [f"{prefix}-{i}" for i in range(count)]
    response = consumer_api.post(
        "/api/event-types/order.created/events", json=[business_event(n) for n in numbers]
    )
    assert response.status_code == 200, response.text
    return numbers


def open_stream(streams, server, consumer_token, subscription, **params) -> Stream:
    params.setdefault("batch_flush_timeout", 1)
    params.setdefault("max_uncommitted_events", 100)
    params.setdefault("batch_limit", 100)
    stream = Stream(server.url, consumer_token, subscription, **params)
    streams.append(stream)
    return stream


def owners(consumer_api, subscription: str) -> dict[str, str | None]:
    """Partition → the stream id that owns it now (None when unassigned)."""
    stats = consumer_api.get(f"/api/subscriptions/{subscription}/stats").json()["items"][0][
        "partitions"
    ]
    return {p["partition"]: p.get("stream_id") if p["state"] == "assigned" else None for p in stats}


def wait_for_owners(
    consumer_api, subscription: str, expected, timeout: float = 10.0
) -> dict[str, str | None]:
    from streamsite.processes import wait_until

    found: dict[str, str | None] = {}

    def check() -> bool:
        found.update(owners(consumer_api, subscription))
        return bool(expected(found))

    wait_until(check, timeout=timeout, interval=0.05, message=f"owners to become right: {found}")
    return found


def numbers(events) -> list[str]:
    return [e["order_number"] for e in events]


def session_ids(consumer_api, subscription: str) -> list[str]:
    stats = consumer_api.get(f"/api/subscriptions/{subscription}/stats").json()
    return [p["stream_id"] for p in stats["items"][0]["partitions"] if p.get("stream_id")]
