"""Retention: the job trims partitions by age and length, approximately, on Redis's clock;
partitions nobody publishes to any more are trimmed too, and a second run trims nothing.
"""

from __future__ import annotations

import orjson
import pytest

from events import jobs
from events.catalog.retention import retention_targets
from events.store import keys, partitions
from events.store.connections import redis_client
from events.store.job_leases import exclusive
from tests.conftest import bearer
from tests.helpers import business_event, event_type_row

pytestmark = pytest.mark.django_db

HOUR_MS = 3_600_000
NODE = 100  # Redis's stream-node-max-entries: approximate trims drop whole nodes of this many


def redis_now_ms() -> int:
    seconds, micros = redis_client().time()
    return seconds * 1000 + micros // 1000


def write_old(key: str, count: int, age_ms: int) -> None:
    """`count` entries with explicit ids `age_ms` in the past, as if published back then."""
    start = redis_now_ms() - age_ms
    pipe = redis_client().pipeline(transaction=False)
    for i in range(count):
        pipe.xadd(key, {"e": b"{}"}, id=f"{start + i}-0")
    pipe.execute()


def write_new(key: str, count: int) -> list[bytes]:
    pipe = redis_client().pipeline(transaction=False)
    for _ in range(count):
        pipe.xadd(key, {"e": b"{}"})
    return pipe.execute()


def state(key: str) -> tuple[int, list]:
    """A partition's length and entry ids, to compare before and after a run."""
    client = redis_client()
    return client.xlen(key), [entry_id for entry_id, _ in client.xrange(key)]


def test_it_trims_old_events_from_a_partition_nobody_publishes_to(order_type):
    log = keys.log_key(order_type.store_id, 0)
    write_old(log, 3 * NODE, age_ms=2 * HOUR_MS)  # retention is one hour
    fresh = write_new(log, 5)

    trimmed = partitions.trim_all(redis_client(), retention_targets())

    length, ids = state(log)
    assert trimmed == 3 * NODE + 5 - length
    assert ids[-5:] == fresh
    assert length - 5 < NODE  # approximately: at most one node of old entries may stay


def test_a_partition_whose_events_are_all_old_is_emptied(order_type):
    log = keys.log_key(order_type.store_id, 1)
    write_old(log, 250, age_ms=2 * HOUR_MS)
    assert partitions.trim_all(redis_client(), retention_targets()) == 250
    assert redis_client().xlen(log) == 0


def test_events_within_the_retention_time_stay(order_type):
    log = keys.log_key(order_type.store_id, 0)
    write_old(log, 2 * NODE, age_ms=HOUR_MS // 2)
    assert partitions.trim_all(redis_client(), retention_targets()) == 0
    assert redis_client().xlen(log) == 2 * NODE


def test_it_trims_by_length_to_about_the_maximum(order_type):
    order_type.retention_max_events = 50
    order_type.save()
    log = keys.log_key(order_type.store_id, 0)
    newest = write_new(log, 5 * NODE)

    trimmed = partitions.trim_all(redis_client(), retention_targets())

    length, ids = state(log)
    assert trimmed == 5 * NODE - length
    assert 50 <= length < 50 + NODE
    assert ids == newest[-length:]  # the oldest went, in order


def test_a_second_run_trims_nothing_and_changes_nothing(order_type):
    order_type.retention_max_events = 50
    order_type.save()
    for partition in (0, 1):
        log = keys.log_key(order_type.store_id, partition)
        write_old(log, 2 * NODE, age_ms=2 * HOUR_MS)
        write_new(log, 3 * NODE)
    assert partitions.trim_all(redis_client(), retention_targets()) > 0
    before = [state(keys.log_key(order_type.store_id, p)) for p in (0, 1)]

    assert partitions.trim_all(redis_client(), retention_targets()) == 0

    assert [state(keys.log_key(order_type.store_id, p)) for p in (0, 1)] == before


def test_it_does_not_create_streams_for_partitions_never_written(order_type):
    assert partitions.trim_all(redis_client(), retention_targets()) == 0
    assert redis_client().keys("ss:*") == []


def test_it_trims_every_partition_of_every_event_type(order_type):
    other = event_type_row(
        "invoice.sent",
        owning_application="billing",
        category="undefined",
        retention_time_ms=60_000,
        partition_count=3,
    )
    logs = [keys.log_key(order_type.store_id, p) for p in (0, 1)]
    logs += [keys.log_key(other.store_id, p) for p in (0, 1, 2)]
    for log in logs:
        write_old(log, 120, age_ms=2 * HOUR_MS)

    assert partitions.trim_all(redis_client(), retention_targets()) == 5 * 120
    assert [redis_client().xlen(log) for log in logs] == [0] * 5


def test_partitions_are_trimmed_in_batches_of_one_round_trip(order_type, monkeypatch):
    monkeypatch.setattr(partitions, "TRIM_BATCH", 1)  # two partitions: two pipelines
    for partition in (0, 1):
        write_old(keys.log_key(order_type.store_id, partition), 10, age_ms=2 * HOUR_MS)
    assert partitions.trim_all(redis_client(), retention_targets()) == 20


def test_the_retention_job_reports_what_it_trimmed_and_runs_once_at_a_time(order_type):
    write_old(keys.log_key(order_type.store_id, 0), 10, age_ms=2 * HOUR_MS)
    with exclusive("retention") as taken:
        assert taken
        assert jobs.retention() == jobs.SKIPPED
    assert jobs.retention() == {"trimmed": 10, "compacted": 0}
    assert jobs.retention() == {"trimmed": 0, "compacted": 0}


def test_publishing_still_trims_a_partition_to_its_maximum_as_it_appends(
    client, producer_token, order_type
):
    order_type.retention_max_events = 50
    order_type.partition_count = 1
    order_type.save()
    events = [business_event(f"A-{i}") for i in range(5 * NODE)]
    response = client.post(
        "/api/event-types/order.created/events",
        orjson.dumps(events),
        content_type="application/json",
        **bearer(producer_token),
    )
    assert response.status_code == 200, response.content
    assert 50 <= redis_client().xlen(keys.log_key(order_type.store_id, 0)) < 50 + NODE
