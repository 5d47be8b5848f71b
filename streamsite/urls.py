from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from events.api import health, metrics, openapi

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("events.api.urls")),
    path("dashboard/", include("events.dashboard.urls")),
    path("docs", openapi.docs_page, name="docs"),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("metrics", metrics.metrics, name="metrics"),
    path("", openapi.home, name="home"),
]
