"""/dashboard/: the pages, and the JSON views they poll."""

from __future__ import annotations

from django.urls import path

from events.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview_page, name="overview"),
    path("event-types/<str:name>/", views.event_type_page, name="event-type"),
    path("subscriptions/<uuid:subscription_id>/", views.subscription_page, name="subscription"),
    path("api/overview.json", views.overview_json, name="overview-json"),
    path("api/event-types/<str:name>.json", views.event_type_json, name="event-type-json"),
    path(
        "api/subscriptions/<uuid:subscription_id>.json",
        views.subscription_json,
        name="subscription-json",
    ),
    path("api/dead-letters/<int:pk>/replay", views.replay_dead_letter, name="replay-dead-letter"),
]
