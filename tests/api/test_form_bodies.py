"""A POST whose body claims to be a form reaches the view on the real server
(events/api/transport.py, `read_no_forms`): Twisted does not parse it first.
"""

from __future__ import annotations

import pytest

from tests.api.test_openapi import assert_matches_spec
from tests.helpers import event_type_body

# A body sent as a form that is no form: Twisted would parse it before the application.
NOT_A_FORM = {"Content-Type": "multipart/form-data", "Content-Length": "18"}


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/api/event-types", "/api/event-types"),
        ("/api/event-types/order.created/events", "/api/event-types/{name}/events"),
        ("/api/stream-tokens", "/api/stream-tokens"),
    ],
)
def test_a_malformed_form_body_reaches_the_view(live_server, admin_token, path, template):
    with live_server.client(admin_token) as http:
        assert http.post("/api/event-types", json=event_type_body()).status_code == 201
        response = http.post(path, content=b'{"batch_limit": 1}', headers=NOT_A_FORM)
    assert response.status_code == 415, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert_matches_spec("post", template, response)


def test_a_stream_opened_with_a_form_content_type_reads_its_json_body(live_server, admin_token):
    """Nakadi's clients send stream parameters as JSON whatever they name the body."""
    with live_server.client(admin_token) as http:
        assert http.post("/api/event-types", json=event_type_body()).status_code == 201
        created = http.post(
            "/api/subscriptions",
            json={"owning_application": "billing", "event_types": ["order.created"]},
        )
        path = f"/api/subscriptions/{created.json()['id']}/events"
        response = http.post(
            path,
            content=b'{"batch_limit": 0}',
            headers={**NOT_A_FORM, "Accept": "text/event-stream"},
        )
    assert response.status_code == 422, response.text
    assert "batch_limit" in response.json()["detail"]
