"""The publish benchmark's workload: 1 KB order events, their event type, and a source
that hands out batches with fresh eids, cheaply (bodies are encoded before timing).
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from bench.common import BenchError, World
from events.core.partitioning import choose_partition

EVENT_TYPE = "bench.order-placed"
TEMPLATES = 256  # distinct event bodies, reused round-robin with fresh eids
EID_PLACEHOLDER = "00000000-0000-4000-8000-000000000000"
RETENTION_MS = 2 * 24 * 3600 * 1000  # the server's default retention_time


ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "order_number",
        "customer",
        "shipping_address",
        "items",
        "total",
        "payment_method",
        "channel",
    ],
    "properties": {
        "order_number": {"type": "string", "pattern": "^ORD-[0-9]{4}-[0-9]{8}$"},
        "customer": {
            "type": "object",
            "required": ["id", "email", "name"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "email": {"type": "string", "format": "email", "maxLength": 254},
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "loyalty_tier": {"type": "string", "enum": ["none", "silver", "gold"]},
            },
        },
        "shipping_address": {
            "type": "object",
            "required": ["street", "city", "postal_code", "country"],
            "properties": {
                "street": {"type": "string"},
                "city": {"type": "string"},
                "postal_code": {"type": "string", "maxLength": 16},
                "country": {"type": "string", "pattern": "^[A-Z]{2}$"},
            },
        },
        "items": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["sku", "name", "quantity", "unit_price"],
                "properties": {
                    "sku": {"type": "string", "pattern": "^SKU-[0-9]{6}$"},
                    "name": {"type": "string"},
                    "quantity": {"type": "integer", "minimum": 1},
                    "unit_price": {"$ref": "#/definitions/money"},
                },
            },
        },
        "total": {"$ref": "#/definitions/money"},
        "payment_method": {
            "type": "string",
            "enum": ["credit_card", "paypal", "invoice", "direct_debit"],
        },
        "channel": {"type": "string", "enum": ["web", "ios", "android", "store"]},
        "notes": {"type": "string", "maxLength": 2000},
    },
    "definitions": {
        "money": {
            "type": "object",
            "required": ["amount", "currency"],
            "properties": {
                "amount": {"type": "integer", "minimum": 0},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            },
        },
    },
}

_CITIES = ["Berlin", "Hamburg", "München", "Köln", "Leipzig", "Wien", "Zürich", "Amsterdam"]
_PRODUCTS = [
    "Trail running shoe",
    "Merino wool sweater",
    "Rain jacket",
    "Canvas backpack",
    "Leather belt",
    "Cotton T-shirt, 2-pack",
    "Ankle socks, 5-pack",
    "Beanie",
]


def order_event(rng: random.Random, size: int, occurred_at: str) -> dict[str, Any]:
    """One order-placed event (metadata.eid a placeholder) padded to `size` bytes of JSON."""
    items: list[dict[str, Any]] = [
        {
            "sku": f"SKU-{rng.randrange(10**6):06d}",
            "name": rng.choice(_PRODUCTS),
            "quantity": rng.randint(1, 3),
            "unit_price": {"amount": rng.randrange(499, 19999), "currency": "EUR"},
        }
        for _ in range(rng.randint(2, 4))
    ]
    event: dict[str, Any] = {
        "order_number": f"ORD-2025-{rng.randrange(10**8):08d}",
        "customer": {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "email": f"customer{rng.randrange(10**6)}@example.com",
            "name": f"Customer {rng.randrange(10**6)}",
            "loyalty_tier": rng.choice(["none", "silver", "gold"]),
        },
        "shipping_address": {
            "street": f"Hauptstraße {rng.randint(1, 200)}",
            "city": rng.choice(_CITIES),
            "postal_code": f"{rng.randrange(10**5):05d}",
            "country": "DE",
        },
        "items": items,
        "total": {
            "amount": sum(i["quantity"] * i["unit_price"]["amount"] for i in items),
            "currency": "EUR",
        },
        "payment_method": rng.choice(["credit_card", "paypal", "invoice", "direct_debit"]),
        "channel": rng.choice(["web", "ios", "android", "store"]),
        "notes": "",
        "metadata": {"eid": EID_PLACEHOLDER, "occurred_at": occurred_at},
    }
    padding = size - len(orjson.dumps(event))
    if padding < 0:
        raise BenchError(f"--event-bytes {size} is too small for an order event")
    event["notes"] = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(padding))
    return event


def event_type_body(partitions: int) -> dict[str, Any]:
    """The benchmark's event type, as a producer team would define it."""
    return {
        "name": EVENT_TYPE,
        "owning_application": "bench",
        "category": "business",
        "enrichment_strategies": ["metadata_enrichment"],
        "partition_strategy": "random",
        "compatibility_mode": "compatible",
        "schema": {"type": "json_schema", "schema": json.dumps(ORDER_SCHEMA)},
        "default_statistic": {
            "messages_per_minute": 60_000_000,
            "message_size": 1024,
            "read_parallelism": partitions,
            "write_parallelism": partitions,
        },
        "options": {"retention_time": RETENTION_MS},
    }


def create_event_type(world: World, admin_token: str, body: dict[str, Any], partitions: int) -> str:
    """Create the event type `body` describes, with `partitions` partitions, through the API;
    its stream id, which names its Redis keys.
    """
    response = httpx.post(
        f"{world.server_url}/api/event-types",
        json=body,
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=30,
    )
    if response.status_code != 201:
        raise BenchError(f"creating the event type: HTTP {response.status_code}: {response.text}")
    count = response.json()["number_of_partitions"]
    if count != partitions:
        raise BenchError(f"asked for {partitions} partitions, the server made {count}")
    store_id: str = world.django(
        "import json\n"
        "from events.models import EventType\n"
        f"print(json.dumps(EventType.objects.get(name={body['name']!r}).store_id))\n"
    )
    return store_id


class EventSource:
    """Encoded events with fresh eids: the templates are encoded once, before timing, and
    each event only splices a new eid in, so client-side encoding stays negligible.
    """

    def __init__(self, size: int, partitions: int, seed: int = 1) -> None:
        rng = random.Random(seed)
        occurred_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self._templates: list[tuple[bytes, bytes]] = []
        for _ in range(TEMPLATES):
            encoded = orjson.dumps(order_event(rng, size, occurred_at))
            head, tail = encoded.split(EID_PLACEHOLDER.encode())
            self._templates.append((head, tail))
        # A random UUID-shaped prefix per run; the last 12 hex digits count up.
        self._prefix = str(uuid.uuid4())[:24]
        self._next = 0
        self._partitions = partitions

    def take(self, count: int) -> tuple[list[str], list[bytes]]:
        """`count` new events: their eids and their encodings."""
        start = self._next
        self._next += count
        templates, n = self._templates, len(self._templates)
        eids = [f"{self._prefix}{i:012x}" for i in range(start, start + count)]
        payloads = [
            templates[(start + j) % n][0] + eid.encode() + templates[(start + j) % n][1]
            for j, eid in enumerate(eids)
        ]
        return eids, payloads

    def partition(self, eid: str) -> int:
        """The partition the server puts an event with this eid on (random strategy)."""
        return choose_partition({}, strategy="random", partition_count=self._partitions, eid=eid)
