"""Shared by the client's tests: an event type over the API, what it stores, and events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamsite.processes import wait_until
from tests.helpers import event_type_body

TYPE = "order.created"


def create_type(api: Any, partitions: int = 1) -> None:
    response = api.post("/api/event-types", json=event_type_body(partitions=partitions))
    assert response.status_code == 201, response.text


def subscribe(api: Any, partitions: int = 1, **fields: Any) -> str:
    create_type(api, partitions)
    body = {"owning_application": "shop", "event_types": [TYPE], "read_from": "begin", **fields}
    response = api.post("/api/subscriptions", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def stored(api: Any) -> int:
    """How many events the type's partitions hold (a duplicate would count twice)."""
    response = api.get(f"/api/event-types/{TYPE}/partitions")
    return sum(p["length"] for p in response.json())


def orders(count: int, prefix: str = "A") -> list[dict[str, Any]]:
    """Events without eid or occurred_at: the client fills them in."""
    return [{"metadata": {}, "order_number": f"{prefix}-{i}"} for i in range(count)]


def wait_for(condition: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    wait_until(condition, timeout=timeout, message=what)
