"""The ASGI entry point: Django for plain HTTP; stream consumers join here (Channels)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "streamsite.settings")
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (after Django setup)

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": URLRouter([]),
    }
)
