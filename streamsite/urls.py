from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from events import docs, health, metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("events.urls")),
    path("docs", docs.docs_page, name="docs"),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("metrics", metrics.metrics, name="metrics"),
    path("", docs.home, name="home"),
]
