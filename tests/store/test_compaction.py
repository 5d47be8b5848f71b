"""Log compaction against the real redis-server: the latest event of every key stays, nothing
younger than the minimum age goes, runs go on where the last stopped, and subscriptions'
pending entries that compaction deleted neither break commits nor come back.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest

from events.core.entries import COMPACTION_KEY
from events.core.offsets import previous_offset
from events.core.publishing import PartitionBatch, Retention
from events.store import compaction, ordered_delivery, tails
from events.store.compaction import compact_all
from events.store.connections import redis_client
from events.store.keys import compaction_key, latest_key, lease_key, log_key
from events.store.scripts import raise_first, run_all_sync
from tests.helpers import lasting
from tests.sessions import shared_plan
from tests.store import test_shared_delivery as shared
from tests.store.test_ordered_delivery import run

HOUR_MS = 3_600_000
NODE = 100  # Redis's stream-node-max-entries: approximate trims drop whole nodes of this many
KEEP = Retention(0, 0)


def publish(keys: str, store: str = "s", retention: Retention = KEEP) -> list[str]:
    """One event per character of `keys` (its compaction key), in one batch; their offsets."""
    payloads = [orjson.dumps({"key": k, "n": i}) for i, k in enumerate(keys)]
    batch = PartitionBatch(0, [""] * len(keys), payloads, list(keys))
    [stored] = raise_first(
        run_all_sync(redis_client(), [compaction.publish_run(store, batch, retention, 60)])
    )
    assert stored == len(keys)
    entries = redis_client().xrevrange(log_key(store, 0), count=len(keys))
    return [entry_id.decode() for entry_id, _ in reversed(entries)]


def compact(min_age_ms: int = 0, store: str = "s", limits=(0, 0)) -> dict[str, int]:
    return compact_all(redis_client(), [(store, 0, *limits)], min_age_ms)


def left(store: str = "s") -> list[tuple[str, str]]:
    """(offset, key) of every entry the log still has, in order."""
    return [
        (entry_id.decode(), fields[COMPACTION_KEY].decode())
        for entry_id, fields in redis_client().xrange(log_key(store, 0))
    ]


def test_compaction_keeps_the_latest_event_of_every_key_in_order():
    first = publish("abac")
    second = publish("ba")

    assert compact() == {"examined": 6, "compacted": 3, "trimmed": 0, "forgotten": 0}

    assert left() == [(first[3], "c"), (second[0], "b"), (second[1], "a")]
    assert compact()["examined"] == 0  # a run right after finds nothing more to do


def test_events_younger_than_the_minimum_age_stay():
    offsets = publish("aaa")
    assert compact(min_age_ms=HOUR_MS) == {
        "examined": 0,
        "compacted": 0,
        "trimmed": 0,
        "forgotten": 0,
    }
    assert [offset for offset, _ in left()] == offsets

    assert compact()["compacted"] == 2
    assert left() == [(offsets[2], "a")]


def test_an_event_superseded_after_compaction_examined_it_goes_as_the_new_one_is_stored():
    [old] = publish("a")
    assert compact()["compacted"] == 0  # the latest of its key: examined, kept
    [new] = publish("a")  # the old one is past the minimum age: it goes at once
    assert left() == [(new, "a")]
    assert compact(min_age_ms=HOUR_MS)["compacted"] == 0
    assert old != new


def test_a_run_out_of_time_stops_after_a_bounded_step_and_the_next_goes_on(monkeypatch):
    monkeypatch.setattr(compaction, "COMPACT_COUNT", 2)
    monkeypatch.setattr(compaction, "COMPACT_SECONDS", 0)  # one step per partition and run
    offsets = publish("aaaaa")

    assert [compact()["examined"] for _ in range(4)] == [2, 2, 1, 0]

    assert left() == [(offsets[4], "a")]
    assert redis_client().hget(compaction_key("s", 0), "scanned").decode() == offsets[4]


def test_a_run_takes_further_steps_while_a_partition_has_more(monkeypatch):
    monkeypatch.setattr(compaction, "COMPACT_COUNT", 2)
    publish("aaaaa", store="s")
    publish("bb", store="t")

    result = compact_all(redis_client(), [("s", 0, 0, 0), ("t", 0, 0, 0)], 0)

    assert (result["examined"], result["compacted"]) == (7, 5)
    assert [key for _, key in left("s") + left("t")] == ["a", "b"]


def test_a_partition_whose_compaction_fails_leaves_the_others_compacted(caplog):
    publish("aa", store="s")
    publish("aa", store="t")
    redis_client().set(latest_key("s", 0), "not a hash")  # its script fails: WRONGTYPE

    result = compact_all(redis_client(), [("s", 0, 0, 0), ("t", 0, 0, 0)], 0)

    assert result["compacted"] == 1
    assert len(left("t")) == 1
    assert "compaction of s/0 failed" in caplog.text


def test_compact_and_delete_trims_by_time_and_forgets_the_keys_it_trimmed():
    log, latest = log_key("s", 0), latest_key("s", 0)
    old = int(redis_client().time()[0]) * 1000 - 2 * HOUR_MS
    pipe = redis_client().pipeline(transaction=False)
    for i in range(2 * NODE + 50):  # stored two hours ago, each the latest of its key
        pipe.xadd(log, {"e": b"{}", "k": f"old-{i}"}, id=f"{old + i}-0")
        pipe.hset(latest, f"old-{i}", f"{old + i}-0")
    pipe.execute()
    fresh = publish("az")

    result = compact(limits=(0, HOUR_MS))

    # Approximately, as all trimming: two whole nodes of old entries went, and their keys.
    assert result["trimmed"] == result["forgotten"] == 2 * NODE
    assert left()[-2:] == [(fresh[0], "a"), (fresh[1], "z")]
    assert redis_client().hlen(latest) == 50 + 2
    # Where retention trimmed to is recorded: readers tell it from compaction's deletions.
    trimmed = redis_client().hget(compaction_key("s", 0), "trimmed").decode()
    assert trimmed == previous_offset(f"{old + 2 * NODE}-0")  # the first entry left


def test_compact_ignores_retention_time_and_records_no_trim():
    publish("ab")
    assert compact()["trimmed"] == 0
    assert redis_client().hget(compaction_key("s", 0), "trimmed") == b"0-0"


def test_a_log_that_turns_compacted_counts_what_it_lost_before_as_trimmed():
    log = log_key("s", 0)
    ids = [redis_client().xadd(log, {"e": b"{}"}).decode() for _ in range(3)]
    redis_client().xtrim(log, minid=ids[1], approximate=False)  # while it only deleted

    publish("a")

    recorded = redis_client().hget(compaction_key("s", 0), "trimmed").decode()
    assert recorded == previous_offset(ids[1])
    assert compact()["compacted"] == 0  # entries without a key are never compacted away


SUB = "sub-1"


def test_an_ordered_subscription_commits_past_entries_compaction_deleted():
    offsets = publish("aab")

    async def scenario(d, leases, client):
        lease = await leases.acquire("s", 0, SUB, "one", lasting())
        await d.prepare(lease, "BEGIN")
        [read] = await d.read([(lease, 10)])
        await d.mark_sent(lease, offsets[-1], [offsets[-1]])
        assert compact()["compacted"] == 1  # offsets[0], pending for "one"
        result = await ordered_delivery.commit(client, SUB, "one", "s", 0, offsets[-1])
        pending = await client.xpending(log_key("s", 0), SUB)
        return [o for o, _ in read], result, pending["pending"]

    assert run(scenario) == (offsets, "committed", 0)


def test_an_ordered_subscription_does_not_redeliver_what_compaction_deleted_from_a_dead_owner():
    offsets = publish("aab")

    async def scenario(d, leases, client):
        lease = await leases.acquire("s", 0, SUB, "one", lasting())
        await d.prepare(lease, "BEGIN")
        await d.read([(lease, 10)])
        await d.mark_sent(lease, offsets[-1], [offsets[-1]])
        compact()
        await client.delete(lease_key("s", 0, SUB))  # "one" dies
        lease = await leases.acquire("s", 0, SUB, "two", lasting())
        await d.prepare(lease, "BEGIN")
        claimed = await d.claim(lease, "0-0", 10, max_deliveries=5)
        pending = await client.xpending(log_key("s", 0), SUB)
        return [o for o, _ in claimed.entries], claimed.next_start, pending["pending"]

    assert run(scenario) == (offsets[1:], "0-0", 2)  # the deleted one was acked


@pytest.mark.parametrize("reads", [1, 3])
def test_a_shared_subscription_neither_redelivers_nor_trips_on_deleted_pending_entries(reads):
    plan = shared_plan(1)
    store = plan.partitions[0].store_id
    shared.prepare(plan)
    offsets = publish("aab", store=store)
    shared.read(plan, "a", reads)
    shared.send(plan, "a", offsets[:reads])
    assert compact(store=store)["compacted"] == 1
    shared.dies(plan, "a")

    claimed = shared.claim(plan, "b")

    assert claimed == offsets[1:reads]
    assert offsets[0] not in shared.counts(plan)  # no longer pending: nobody waits for it
    assert shared.ack(plan, [offsets[0]]) == [["not_pending"]]


def test_readers_take_compaction_for_no_trimming_but_retention_for_trimming():
    offsets = publish("aab")
    compact()
    [bounds] = asyncio.run(tails.bounds([log_key("s", 0)]))
    assert (bounds.last, bounds.trimmed_to) == (offsets[-1], "0-0")  # a hole, no loss

    redis_client().hset(compaction_key("s", 0), "trimmed", offsets[1])  # as a trim records
    [bounds] = asyncio.run(tails.bounds([log_key("s", 0)]))
    assert bounds.trimmed_to == offsets[1]
