"""The URLs under /api/ that Django serves (streams and a few hot paths are routed in
streamsite/asgi.py, before Django)."""

from __future__ import annotations

from django.urls import path

from events.api import (
    acks,
    cursors,
    dead_letters,
    event_types,
    openapi,
    stream_tokens,
    subscriptions,
)

urlpatterns = [
    path("openapi.json", openapi.openapi_json, name="openapi-json"),
    path("openapi.yaml", openapi.openapi_yaml, name="openapi-yaml"),
    path("stream-tokens", stream_tokens.stream_token_list, name="stream-tokens"),
    path("event-types", event_types.event_type_list, name="event-types"),
    path("event-types/<str:name>", event_types.event_type_detail, name="event-type"),
    path("event-types/<str:name>/schemas", event_types.schema_list, name="schemas"),
    path("event-types/<str:name>/schemas/<str:version>", event_types.schema_detail, name="schema"),
    path("event-types/<str:name>/partitions", event_types.partition_list, name="partitions"),
    path(
        "event-types/<str:name>/partitions/<str:partition>",
        event_types.partition_detail,
        name="partition",
    ),
    path("event-types/<str:name>/events", event_types.publish_events, name="publish"),
    path("subscriptions", subscriptions.subscription_list, name="subscriptions"),
    path(
        "subscriptions/<str:subscription_id>",
        subscriptions.subscription_detail,
        name="subscription",
    ),
    path(
        "subscriptions/<str:subscription_id>/cursors",
        cursors.subscription_cursors,
        name="subscription-cursors",
    ),
    path(
        "subscriptions/<str:subscription_id>/acks",
        acks.subscription_acks,
        name="subscription-acks",
    ),
    path(
        "subscriptions/<str:subscription_id>/stats",
        cursors.subscription_stats,
        name="subscription-stats",
    ),
    path(
        "subscriptions/<str:subscription_id>/dead-letters",
        dead_letters.dead_letter_list,
        name="dead-letters",
    ),
    path(
        "subscriptions/<str:subscription_id>/dead-letters/<int:dead_letter_id>",
        dead_letters.dead_letter_detail,
        name="dead-letter",
    ),
    path(
        "subscriptions/<str:subscription_id>/dead-letters/<int:dead_letter_id>/replay",
        dead_letters.dead_letter_replay,
        name="dead-letter-replay",
    ),
]
