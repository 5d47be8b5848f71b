"""THE PEER's URLs: django-eventstream's reader view, and a publish endpoint for the benchmark."""

from __future__ import annotations

import django_eventstream
from django.urls import include, path

from bench.peers.eventstream.views import publish

urlpatterns = [
    path("events/", include(django_eventstream.urls), {"channels": ["bench"]}),
    path("publish", publish),
]
