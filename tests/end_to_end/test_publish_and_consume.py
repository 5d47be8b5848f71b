"""The whole path over a real Daphne on a loopback port: token, event type, publish, offsets."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest

from events.catalog.clients import create_client
from events.core.entries import EVENT
from events.store.connections import redis_client
from tests.helpers import business_event, event_type_body, log_key


@pytest.fixture
def producer(live_server):
    token = create_client("shop", publish=["order.*"], read=["order.*"])[1]
    with live_server.client(token) as http:
        yield http


def test_a_producer_defines_a_type_publishes_and_sees_offsets(producer):
    created = producer.post("/api/event-types", json=event_type_body(partitions=2))
    assert created.status_code == 201, created.text
    events = [business_event(f"A-{i}") for i in range(50)]
    published = producer.post(
        "/api/event-types/order.created/events", json=events, headers={"X-Flow-Id": "e2e"}
    )
    assert published.status_code == 200, published.text
    partitions = producer.get("/api/event-types/order.created/partitions").json()
    assert sum(p["length"] for p in partitions) == 50
    kept = [
        orjson.loads(fields[EVENT])
        for p in range(2)
        for _, fields in redis_client().xrange(log_key("order.created", p))
    ]
    assert sorted(e["order_number"] for e in kept) == sorted(e["order_number"] for e in events)
    assert {e["metadata"]["flow_id"] for e in kept} == {"e2e"}


def test_concurrent_retries_of_one_batch_store_each_event_once(live_server, producer):
    """Producers that time out and retry at once, from several connections."""
    producer.post("/api/event-types", json=event_type_body(partitions=3))
    events = [business_event(f"A-{i}") for i in range(200)]
    token = producer.headers["Authorization"]

    async def send() -> int:
        async with httpx.AsyncClient(
            base_url=live_server.url, timeout=10, headers={"Authorization": token}
        ) as http:
            response = await http.post("/api/event-types/order.created/events", json=events)
            return response.status_code

    async def all_at_once() -> list[int]:
        return await asyncio.gather(*(send() for _ in range(8)))

    assert asyncio.run(all_at_once()) == [200] * 8
    total = sum(redis_client().xlen(log_key("order.created", p)) for p in range(3))
    assert total == 200


def test_errors_from_the_real_server_are_problems(live_server, producer):
    with live_server.client() as anonymous:
        response = anonymous.get("/api/event-types")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    response = producer.post(
        "/api/event-types/missing/events",
        content=b"[{",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 404
    assert response.json()["title"] == "Not Found"


def test_the_server_reports_ready(live_server):
    with live_server.client() as http:
        response = http.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "redis": "ok", "database": "ok"}


def test_the_server_serves_the_admins_static_files(live_server):
    with live_server.client() as http:
        response = http.get("/static/admin/css/base.css")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/css")
        assert http.get("/static/admin/css/nothing-here.css").status_code == 404
