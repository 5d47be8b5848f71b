"""Streamsite's Python client: publishing, subscription streams, processors and readers,
for sync code (`Client`) and asyncio (`AsyncClient`). Needs only httpx; see client/README.md.
"""

from __future__ import annotations

from streamsite_client.aclient import AsyncClient
from streamsite_client.client import Client
from streamsite_client.errors import (
    ApiError,
    CommitRefused,
    FailedEvent,
    PublishError,
    PublishRefused,
    StreamEnded,
    StreamsiteError,
)
from streamsite_client.options import StreamOptions
from streamsite_client.transport import RetryPolicy
from streamsite_client.wire import Batch, ReaderBatch, Reset

__all__ = [
    "ApiError",
    "AsyncClient",
    "Batch",
    "Client",
    "CommitRefused",
    "FailedEvent",
    "PublishError",
    "PublishRefused",
    "ReaderBatch",
    "Reset",
    "RetryPolicy",
    "StreamEnded",
    "StreamOptions",
    "StreamsiteError",
]
