"""The ASGI entry point: Django for plain HTTP; stream consumers join here (Channels)."""

from __future__ import annotations

import gc
import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "streamsite.settings")
django_application = get_asgi_application()

from channels.routing import URLRouter  # noqa: E402  (after Django setup)
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.urls import path, re_path  # noqa: E402

from events.api import acks, cursors, event_types  # noqa: E402
from events.api.consumers import SubscriptionSocket, SubscriptionStream  # noqa: E402
from events.api.cors import Cors  # noqa: E402
from events.api.readers import ReaderStream  # noqa: E402
from events.api.routing import (  # noqa: E402
    AsyncView,
    ByMethod,
    ByProtocol,
    MethodNotAllowed,
    reader_route,
)
from events.api.transport import WriteBufferProbe, read_no_forms  # noqa: E402
from events.streaming import draining  # noqa: E402

django_http = ASGIStaticFilesHandler(django_application)
readers = Cors(ReaderStream.as_asgi())

# The admin's static files are served here, in front of Django, straight from the packages:
# every middleware must stay async-capable, or each request pays dozens of thread hops
# (WhiteNoise's sync-only middleware made a trivial request take 5 ms).
http_routes = URLRouter(
    [
        # Streams are Channels consumers: no thread of their own (docs/architecture.md).
        path(
            "api/subscriptions/<str:subscription_id>/events",
            Cors(SubscriptionStream.as_asgi()),  # type: ignore[arg-type]
        ),
        # The hot paths, publishing and committing, skip Django's request handling
        # (its other methods and paths go to Django).
        # Publishing is a hot path; a GET is a reader's stream (matched here only where
        # `http` below did not match it first, e.g. under a root path).
        path(
            "api/event-types/<str:name>/events",
            Cors(  # type: ignore[arg-type]
                ByMethod(
                    {
                        "POST": AsyncView(event_types.publish_events),
                        "GET": ReaderStream.as_asgi(),
                    },
                    default=MethodNotAllowed("GET", "POST"),
                )
            ),
        ),
        path("api/events", Cors(ReaderStream.as_asgi())),  # type: ignore[arg-type]
        path(
            "api/subscriptions/<str:subscription_id>/cursors",
            ByMethod(  # type: ignore[arg-type]
                {"POST": AsyncView(cursors.subscription_cursors)}, default=django_http
            ),
        ),
        path(
            "api/subscriptions/<str:subscription_id>/acks",
            ByMethod(  # type: ignore[arg-type]
                {"POST": AsyncView(acks.subscription_acks)}, default=django_http
            ),
        ),
        re_path(r"", django_http),  # type: ignore[arg-type]
    ]
)


def http(scope: Any, receive: Any, send: Any) -> Any:
    """Readers first, each request's scope added to rather than copied (URLRouter copies
    it), and no coroutine in between: a process holds tens of thousands of readers, and
    each one's memory is the scope and coroutine it keeps for hours.
    """
    route = reader_route(scope["path"]) if scope["method"] == "GET" else None
    if route is None:
        return http_routes(scope, receive, send)
    scope["url_route"] = {"args": (), "kwargs": route}
    return readers(scope, receive, send)


http._asgi_single_callable = True  # type: ignore[attr-defined]  # ASGI 3, not a coroutine function


application = ByProtocol(
    {
        # Outermost: the readers bound what Daphne holds for a slow client.
        "http": WriteBufferProbe(http),
        "websocket": URLRouter(
            [path("ws/subscriptions/<str:subscription_id>", SubscriptionSocket.as_asgi())]
        ),
    }
)

read_no_forms()  # a malformed form body reaches the views (415), not Twisted's bare 400
draining.install()  # SIGTERM or SIGUSR1: drain (close every stream with `shutdown`), then stop

# Everything loaded so far lives as long as the process: keep it out of the collector's
# scans, and collect young objects less often, since parsing one published batch of 1,000
# events makes ~40k of them (bench/README.md has the measurements).
gc.freeze()
gc.set_threshold(50_000, 50, 100)
