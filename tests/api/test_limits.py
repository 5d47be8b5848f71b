"""Bounds on what a request may ask for: answered as problems, never as 500s."""

from __future__ import annotations

import orjson
import pytest

from tests.conftest import bearer
from tests.helpers import business_event, event_type_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def order_type(client, producer_token):
    body = event_type_body(partitions=2)
    response = client.post(
        "/api/event-types",
        orjson.dumps(body),
        content_type="application/json",
        **bearer(producer_token),
    )
    assert response.status_code == 201


def test_a_batch_over_the_event_limit_is_413(client, producer_token, order_type, settings):
    settings.MAX_BATCH_EVENTS = 3
    response = client.post(
        "/api/event-types/order.created/events",
        orjson.dumps([business_event() for _ in range(4)]),
        content_type="application/json",
        **bearer(producer_token),
    )
    assert response.status_code == 413
    assert "maximum is 3" in response.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/event-types/order.created/partitions/" + "9" * 5000,
        "/api/event-types/order.created/schemas?offset=99999999999999999999",
    ],
)
def test_huge_numbers_in_paths_and_queries_are_not_500s(client, producer_token, order_type, path):
    response = client.get(path, **bearer(producer_token))
    assert response.status_code in (400, 404)
    assert response["Content-Type"] == "application/problem+json"


def test_a_host_not_allowed_is_refused_on_the_api_too(client, producer_token):
    response = client.get("/api/event-types", HTTP_HOST="evil.example", **bearer(producer_token))
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"


def test_a_redis_that_does_not_answer_is_a_503_with_a_retry_hint(
    client, producer_token, order_type, settings
):
    from streamsite.processes import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    response = client.post(
        "/api/event-types/order.created/events",
        orjson.dumps([business_event()]),
        content_type="application/json",
        **bearer(producer_token),
    )
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response["Content-Type"] == "application/problem+json"
