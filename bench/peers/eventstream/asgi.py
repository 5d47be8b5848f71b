"""THE PEER's ASGI application, served by `daphne` as django-eventstream's README sets it up."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.peers.eventstream.settings")
application = get_asgi_application()
