"""What Zalando's clin 1.8.0 (PyPI `clin`, `clin apply`) sends to a Nakadi server, field for
field, so that tests send exactly that (issue 14). Read from clin's `clients/nakadi.py` and
`clients/http_client.py`; clin sends every request with these headers and a JSON body.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from tests.helpers import ORDER_SCHEMA

USER_AGENT = "clin+1.8.0"
MS_IN_DAY = 24 * 3600 * 1000


def headers(token: str) -> dict[str, str]:
    """clin's headers, as keyword arguments of Django's test client."""
    return {"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_USER_AGENT": USER_AGENT}


def attributes(services: list[str], *, anyone: bool = False) -> list[dict[str, str]]:
    """An authorization role as clin writes it: users, then services, then teams, then
    `*`/`*` when the manifest says `anyToken`."""
    listed = [{"data_type": "service", "value": name} for name in services]
    return listed + ([{"data_type": "*", "value": "*"}] if anyone else [])


def event_type(
    name: str = "order.created",
    *,
    owner: str = "shop",
    partitions: int = 1,
    with_statistic: bool = True,
    annotations: dict[str, str] | None = None,
    event_owner_selector: dict[str, str] | None = None,
    schema: dict[str, Any] | None = None,
    retention_days: int = 1,
) -> dict[str, Any]:
    """The body of clin's POST /event-types (`with_statistic`) or PUT /event-types/{name}
    (clin never sends `default_statistic` there)."""
    body: dict[str, Any] = {
        "name": name,
        "owning_application": owner,
        "category": "business",
        "audience": "company-internal",
        "partition_strategy": "random",
        "partition_key_fields": [],
        "cleanup_policy": "delete",
        "options": {"retention_time": retention_days * MS_IN_DAY},
        "compatibility_mode": "forward",
        # json.dumps, not orjson: clin's text has spaces after ':' and ','.
        "schema": {
            "type": "json_schema",
            "version": "1.0.0",
            "schema": json.dumps(schema or ORDER_SCHEMA),
        },
        "authorization": {
            "admins": attributes([owner]),
            "readers": attributes([], anyone=True),
            "writers": attributes([owner]),
        },
        "enrichment_strategies": ["metadata_enrichment"],
        "annotations": annotations or {},
    }
    if with_statistic:
        body["default_statistic"] = {
            "messages_per_minute": 1,
            "message_size": 1,
            "read_parallelism": partitions,
            "write_parallelism": partitions,
        }
    if event_owner_selector is not None:
        body["event_owner_selector"] = event_owner_selector
    return body


def subscription(
    event_types: list[str],
    *,
    owner: str = "billing",
    consumer_group: str = "default",
    admins: list[str] | None = None,
    readers: list[str] | None = None,
) -> dict[str, Any]:
    """The body of clin's POST /subscriptions, and of its PUT /subscriptions/{id}."""
    return {
        "owning_application": owner,
        "event_types": event_types,
        "consumer_group": consumer_group,
        "initial_cursors": [],
        "read_from": "end",
        "authorization": {
            "admins": attributes(admins or [owner]),
            "readers": attributes(readers or [owner]),
        },
    }


def find_subscription_query(event_types: list[str], owner: str) -> str:
    """The query of clin's GET /subscriptions: one `event_type` joined by commas, encoded
    as `requests` encodes it (`,` as `%2C`)."""
    return urlencode({"event_type": ",".join(event_types), "owning_application": owner})
