"""THE PEER's settings (django-eventstream, not Streamsite): as small as its README's setup.

Redis comes from the environment (the benchmark's redis-server, its own db number). No
event storage (EVENTSTREAM_STORAGE_CLASS unset), so no database work per event and no
resume: less than Streamsite does per event. No middleware, as Streamsite's hot paths.
"""

from __future__ import annotations

import os

SECRET_KEY = "bench-peer-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django_eventstream",
]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.peers.eventstream.urls"
ASGI_APPLICATION = "bench.peers.eventstream.asgi.application"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
USE_TZ = True
EVENTSTREAM_REDIS = {
    "host": os.environ.get("PEER_REDIS_HOST", "127.0.0.1"),
    "port": int(os.environ.get("PEER_REDIS_PORT", "6379")),
    "db": int(os.environ.get("PEER_REDIS_DB", "1")),
}
LOGGING = {
    "version": 1,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
