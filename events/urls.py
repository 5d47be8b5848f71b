from __future__ import annotations

from django.urls import path

from events import ack_api, api, cursor_api, dead_letter_api, docs, subscription_api

urlpatterns = [
    path("openapi.json", docs.openapi_json, name="openapi-json"),
    path("openapi.yaml", docs.openapi_yaml, name="openapi-yaml"),
    path("event-types", api.event_type_list, name="event-types"),
    path("event-types/<str:name>", api.event_type_detail, name="event-type"),
    path("event-types/<str:name>/schemas", api.schema_list, name="schemas"),
    path("event-types/<str:name>/schemas/<str:version>", api.schema_detail, name="schema"),
    path("event-types/<str:name>/partitions", api.partition_list, name="partitions"),
    path(
        "event-types/<str:name>/partitions/<str:partition>", api.partition_detail, name="partition"
    ),
    path("event-types/<str:name>/events", api.publish_events, name="publish"),
    path("subscriptions", subscription_api.subscription_list, name="subscriptions"),
    path(
        "subscriptions/<str:subscription_id>",
        subscription_api.subscription_detail,
        name="subscription",
    ),
    path(
        "subscriptions/<str:subscription_id>/cursors",
        cursor_api.subscription_cursors,
        name="subscription-cursors",
    ),
    path(
        "subscriptions/<str:subscription_id>/acks",
        ack_api.subscription_acks,
        name="subscription-acks",
    ),
    path(
        "subscriptions/<str:subscription_id>/stats",
        cursor_api.subscription_stats,
        name="subscription-stats",
    ),
    path(
        "subscriptions/<str:subscription_id>/dead-letters",
        dead_letter_api.dead_letter_list,
        name="dead-letters",
    ),
    path(
        "subscriptions/<str:subscription_id>/dead-letters/<int:dead_letter_id>",
        dead_letter_api.dead_letter_detail,
        name="dead-letter",
    ),
    path(
        "subscriptions/<str:subscription_id>/dead-letters/<int:dead_letter_id>/replay",
        dead_letter_api.dead_letter_replay,
        name="dead-letter-replay",
    ),
]
