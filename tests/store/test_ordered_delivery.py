"""The fenced delivery scripts against the real redis-server: claims, sent marks, commits."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from django.conf import settings

from events.store import ordered_delivery, subscription_state
from events.store.connections import redis_client
from events.store.keys import (
    batches_key,
    charged_key,
    committed_key,
    dead_key,
    lease_key,
    log_key,
    sent_key,
    skipped_key,
)
from events.store.leases import Leases
from events.store.ordered_delivery import Delivery
from events.store.recovery import RETIRE_CONSUMER
from tests.helpers import lasting

SUB = "sub-1"


def run(scenario):
    async def main():
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        try:
            return await scenario(Delivery(client), Leases(client), client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def append(count: int) -> list[str]:
    return [
        redis_client().xadd(log_key("s", 0), {"e": f'{{"n":{i}}}'}).decode() for i in range(count)
    ]


def commit(session: str, offset: str) -> str:
    async def main() -> str:
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        try:
            return await ordered_delivery.commit(client, SUB, session, "s", 0, offset)
        finally:
            await client.aclose()

    return asyncio.run(main())


async def takes_reads_and_sends(d, leases, name: str, count: int, sent: str | None):
    """`name` takes the partition, reads `count` entries ahead and sends up to `sent`, in
    one batch.
    """
    lease = await leases.acquire("s", 0, SUB, name, lasting())
    await d.prepare(lease, "BEGIN")
    await d.read([(lease, count)])
    if sent is not None:
        await d.mark_sent(lease, sent, [sent])
    return lease


async def dies_and_is_replaced_by(d, leases, client, name: str):
    """The owner dies (its lease lapses, nothing is released); `name` takes over."""
    await client.delete(lease_key("s", 0, SUB))
    lease = await leases.acquire("s", 0, SUB, name, lasting())
    await d.prepare(lease, "BEGIN")
    return lease


def test_a_commit_acks_everything_up_to_its_offset_and_only_its_owner_may_commit():
    ids = append(5)

    async def scenario(d, leases, client):
        lease = await leases.acquire("s", 0, SUB, "a", lasting())
        assert await d.prepare(lease, "BEGIN") == "BEGIN"
        read = await d.read([(lease, 5)])
        assert [offset for offset, _ in read[0]] == ids
        assert await d.mark_sent(lease, ids[2])
        return lease

    run(scenario)
    assert commit("b", ids[1]) == "not_owner"
    assert commit("a", ids[3]) == "undelivered"  # read, but never sent to the client
    assert commit("a", ids[1]) == "committed"
    assert redis_client().xpending(log_key("s", 0), SUB)["pending"] == 3
    assert commit("a", ids[0]) == "outdated"
    assert commit("a", ids[1]) == "outdated"  # the keep-alive commit
    assert redis_client().get(committed_key("s", 0, SUB)).decode() == ids[1]


def test_a_new_owner_claims_what_the_old_one_left_pending_in_order():
    ids = append(4)

    async def scenario(d, leases, client):
        old = await takes_reads_and_sends(d, leases, "old", 4, None)
        await d.release(old)
        new = await leases.acquire("s", 0, SUB, "new", lasting())
        assert await d.claim(old, "0-0", 10, 10) is None  # fenced: no longer the old one's
        first = await d.claim(new, "0-0", 3, 10)
        rest = await d.claim(new, first.next_start, 3, 10)
        return first, rest

    first, rest = run(scenario)
    assert [offset for offset, _ in first.entries] == ids[:3]
    assert [offset for offset, _ in rest.entries] == ids[3:]
    assert rest.next_start == "0-0"


def test_a_trimmed_pending_entry_is_acked_instead_of_claimed():
    ids = append(3)

    async def scenario(d, leases, client):
        old = await takes_reads_and_sends(d, leases, "old", 3, None)
        await client.xdel(log_key("s", 0), ids[1])
        await d.release(old)
        new = await leases.acquire("s", 0, SUB, "new", lasting())
        return await d.claim(new, "0-0", 10, 10)

    claimed = run(scenario)
    assert [offset for offset, _ in claimed.entries] == [ids[0], ids[2]]
    assert redis_client().xpending(log_key("s", 0), SUB)["pending"] == 2


def test_the_group_starts_after_the_committed_offset():
    ids = append(3)

    async def scenario(d, leases, client):
        lease = await leases.acquire("s", 0, SUB, "a", lasting())
        assert await d.prepare(lease, ids[1]) == ids[1]
        return await d.read([(lease, 10)])

    assert [offset for offset, _ in run(scenario)[0]] == [ids[2]]


def test_releasing_drops_the_consumer_only_when_nothing_is_pending_for_it():
    append(2)

    async def scenario(d, leases, client):
        lease = await leases.acquire("s", 0, SUB, "a", lasting())
        await d.prepare(lease, "BEGIN")
        await d.read([(lease, 2)])
        await d.release(lease)
        consumers = await client.xinfo_consumers(log_key("s", 0), SUB)
        idle = await leases.acquire("s", 0, SUB, "b", lasting())
        await d.release(idle)
        after = await client.xinfo_consumers(log_key("s", 0), SUB)
        return consumers, after

    consumers, after = run(scenario)
    # A session's consumer is "<session>:<lease token>".
    assert [c["name"] for c in consumers] == [b"a:1"]  # kept: two entries still pending
    assert [c["name"] for c in after] == [b"a:1"]  # "b" had nothing pending: dropped


@pytest.mark.parametrize("offset", ["9-0", "10-0"])
def test_offsets_compare_as_number_pairs_in_lua(offset):
    async def scenario(d, leases, client):
        lease = await leases.acquire("s", 0, SUB, "a", lasting())
        await d.prepare(lease, "BEGIN")
        await d.mark_sent(lease, "10-0")

    run(scenario)
    assert commit("a", offset) == "committed"
    assert commit("a", "11-0") == "undelivered"


def test_a_claim_acks_instead_of_redelivering_what_is_already_committed():
    ids = append(3)

    async def scenario(d, leases, client):
        # A reader whose lease then lapsed left these pending.
        stale = await takes_reads_and_sends(d, leases, "stale", 3, None)
        await d.release(stale)
        await client.set(committed_key("s", 0, SUB), ids[1])  # a later owner committed these
        new = await leases.acquire("s", 0, SUB, "new", lasting())
        return await d.claim(new, "0-0", 10, 10)

    claimed = run(scenario)
    assert [offset for offset, _ in claimed.entries] == [ids[2]]
    assert redis_client().xpending(log_key("s", 0), SUB)["pending"] == 1


def delivery_counts() -> dict[str, int]:
    pending = redis_client().xpending_range(log_key("s", 0), SUB, "-", "+", 100)
    return {p["message_id"].decode(): p["times_delivered"] for p in pending}


def dead_offsets() -> list[str]:
    return [fields[b"o"].decode() for _, fields in redis_client().xrange(dead_key("s", 0, SUB))]


def test_what_crashed_owners_read_ahead_but_never_sent_is_never_counted_as_delivered():
    ids = append(4)

    async def scenario(d, leases, client):
        await takes_reads_and_sends(d, leases, "first", 4, ids[1])  # ids[2:] never sent
        claims = []
        for n in range(3):
            owner = await dies_and_is_replaced_by(d, leases, client, f"next-{n}")
            claims.append(await d.claim(owner, "0-0", 10, max_deliveries=1))
        return claims

    claims = run(scenario)
    # ids[:2] were sent once: a second delivery is past max_deliveries. The others were
    # never sent: however many owners died holding them, each claim is their first.
    assert dead_offsets() == ids[:2]
    assert [[offset for offset, _ in claimed.entries] for claimed in claims] == [ids[2:]] * 3
    assert delivery_counts() == {ids[2]: 1, ids[3]: 1}


def test_owners_that_claimed_and_died_before_sending_add_no_delivery():
    ids = append(3)

    async def scenario(d, leases, client):
        await takes_reads_and_sends(d, leases, "first", 3, ids[1])
        for n in range(3):  # each claims, holds the entries in its buffer, and dies
            owner = await dies_and_is_replaced_by(d, leases, client, f"next-{n}")
            claimed = await d.claim(owner, "0-0", 10, max_deliveries=2)
        return claimed

    claimed = run(scenario)
    assert [offset for offset, _ in claimed.entries] == ids
    assert dead_offsets() == []
    assert delivery_counts() == {ids[0]: 2, ids[1]: 2, ids[2]: 1}  # sent once, and now


def test_a_claim_takes_a_long_pending_list_in_chunks():
    pipe = redis_client().pipeline()
    for i in range(2500):
        pipe.xadd(log_key("s", 0), {"e": f'{{"n":{i}}}'})
    ids = [offset.decode() for offset in pipe.execute()]

    async def scenario(d, leases, client):
        await takes_reads_and_sends(d, leases, "old", 2500, None)
        new = await dies_and_is_replaced_by(d, leases, client, "new")
        chunks, start = [], "0-0"
        while True:
            claimed = await d.claim(new, start, 10_000, max_deliveries=1)
            chunks.append([offset for offset, _ in claimed.entries])
            if claimed.next_start == "0-0":
                return chunks
            start = claimed.next_start

    chunks = run(scenario)
    assert max(len(chunk) for chunk in chunks) <= ordered_delivery.CLAIM_CHUNK
    assert [offset for chunk in chunks for offset in chunk] == ids
    assert set(delivery_counts().values()) == {1}  # read ahead, never sent: not counted


def test_each_holder_counts_only_what_it_sent_across_a_graceful_hand_over():
    ids = append(4)

    async def scenario(d, leases, client):
        await takes_reads_and_sends(d, leases, "first", 4, ids[1])
        second = await dies_and_is_replaced_by(d, leases, client, "second")
        await d.claim(second, "0-0", 10, max_deliveries=2)
        await d.mark_sent(second, ids[0], [ids[0]])  # sends one, then leaves cleanly
        await d.release(second)
        third = await leases.acquire("s", 0, SUB, "third", lasting())
        await d.prepare(third, "BEGIN")
        return await d.claim(third, "0-0", 10, max_deliveries=2)

    claimed = run(scenario)
    assert dead_offsets() == [ids[0]]  # sent to "first" and "second": a third is too many
    assert [offset for offset, _ in claimed.entries] == ids[1:]
    assert delivery_counts() == {ids[1]: 2, ids[2]: 1, ids[3]: 1}


def batches() -> list[str]:
    return [value.decode() for value in redis_client().lrange(batches_key("s", 0, SUB), 0, -1)]


def test_a_commit_forgets_the_batches_it_covers_and_a_reset_forgets_all():
    ids = append(4)

    async def scenario(d, leases, client):
        lease = await leases.acquire("s", 0, SUB, "a", lasting())
        await d.prepare(lease, "BEGIN")
        await d.read([(lease, 4)])
        await d.mark_sent(lease, ids[3], [ids[0], ids[2], ids[3]])

    run(scenario)
    assert batches() == ["a:1", ids[0], ids[2], ids[3]]  # its consumer, then its batches
    assert commit("a", ids[1]) == "committed"  # within the second batch: it stays
    assert batches() == ["a:1", ids[2], ids[3]]
    assert commit("a", ids[2]) == "committed"
    assert batches() == ["a:1", ids[3]]
    redis_client().hset(sent_key("s", 0, SUB), ids[0], "a 1")
    redis_client().hset(charged_key("s", 0, SUB), "b", ids[0])
    subscription_state.reset_delivery(redis_client(), SUB, [("s", 0)])
    keys = (batches_key("s", 0, SUB), charged_key("s", 0, SUB), sent_key("s", 0, SUB))
    assert not redis_client().exists(*keys)


def test_only_the_first_batch_its_client_did_not_commit_is_charged():
    ids = append(5)

    async def scenario(d, leases, client):
        first = await takes_reads_and_sends(d, leases, "first", 5, None)
        await d.mark_sent(first, ids[4], [ids[0], ids[2], ids[4]])  # three batches at once
        assert await ordered_delivery.commit(client, SUB, "first", "s", 0, ids[0]) == "committed"
        await d.release(first)  # its client stopped within the second batch
        second = await leases.acquire("s", 0, SUB, "second", lasting())
        await d.prepare(second, "BEGIN")
        return await d.claim(second, "0-0", 10, max_deliveries=1)

    claimed = run(scenario)
    assert dead_offsets() == ids[1:3]  # charged: one delivery was all they might have
    assert [offset for offset, _ in claimed.entries] == ids[3:]  # sent after it: uncharged
    assert claimed.retried == frozenset()
    assert delivery_counts() == {ids[3]: 1, ids[4]: 1}


def test_a_claim_names_the_events_charged_before():
    ids = append(3)

    async def scenario(d, leases, client):
        await takes_reads_and_sends(d, leases, "first", 3, ids[1])  # batch [0, 1], then dies
        second = await dies_and_is_replaced_by(d, leases, client, "second")
        return await d.claim(second, "0-0", 10, max_deliveries=5)

    claimed = run(scenario)
    assert [offset for offset, _ in claimed.entries] == ids
    assert claimed.retried == frozenset(ids[:2])  # each is sent in a batch of its own


def test_a_session_the_server_ends_charges_nothing():
    ids = append(2)

    async def scenario(d, leases, client):
        first = await takes_reads_and_sends(d, leases, "first", 2, ids[1])
        await d.release(first, charge=False)  # a drain: its client did not fail
        second = await leases.acquire("s", 0, SUB, "second", lasting())
        await d.prepare(second, "BEGIN")
        return await d.claim(second, "0-0", 10, max_deliveries=1)

    claimed = run(scenario)
    assert [offset for offset, _ in claimed.entries] == ids
    assert dead_offsets() == []
    assert delivery_counts() == {ids[0]: 1, ids[1]: 1}


def test_a_consumer_s_charge_mark_goes_with_the_consumer():
    ids = append(1)
    marks = charged_key("s", 0, SUB)

    async def scenario(d, leases, client):
        a = await takes_reads_and_sends(d, leases, "a", 1, ids[0])
        await d.release(a)  # one entry still pending: the consumer and its batches stay
        b = await leases.acquire("s", 0, SUB, "b", lasting())
        await d.prepare(b, "BEGIN")  # a's time as owner ends: its charge mark
        kept = await client.hgetall(marks)
        await d.claim(b, "0-0", 10, max_deliveries=10)
        keys = [log_key("s", 0), marks, batches_key("s", 0, SUB)]
        await RETIRE_CONSUMER(client, keys, [SUB, a.consumer, 0])
        await d.mark_sent(b, ids[0], [ids[0]])
        return kept, await client.hkeys(marks), b

    kept, after_retire, b = run(scenario)
    assert (kept, after_retire) == ({b"a:1": ids[0].encode()}, [])
    assert commit("b", ids[0]) == "committed"

    async def leave(d, leases, client):
        await d.release(b)  # nothing pending: consumer and batches go

    run(leave)
    assert not redis_client().exists(marks, batches_key("s", 0, SUB))


def test_a_session_that_takes_back_a_lost_partition_counts_each_tenure_s_sends():
    ids = append(6)

    async def scenario(d, leases, client):
        await takes_reads_and_sends(d, leases, "s", 6, ids[2])
        s = await dies_and_is_replaced_by(d, leases, client, "s")  # its lease lapsed: back
        await d.claim(s, "0-0", 10, max_deliveries=10)  # what it sent before counts again
        await d.mark_sent(s, ids[0], [ids[0]])  # sends one more, then dies
        t = await dies_and_is_replaced_by(d, leases, client, "t")
        return await d.claim(t, "0-0", 10, max_deliveries=10)

    claimed = run(scenario)
    assert [offset for offset, _ in claimed.entries] == ids
    counts = delivery_counts()
    assert counts == {ids[0]: 3, ids[1]: 2, ids[2]: 2, ids[3]: 1, ids[4]: 1, ids[5]: 1}


def skipped() -> int:
    return int(redis_client().get(skipped_key("s", 0, SUB)) or 0)


@pytest.mark.parametrize("skip", [True, False])
def test_an_event_past_max_deliveries_is_skipped_or_a_dead_letter_by_the_policy(skip):
    ids = append(3)

    async def scenario(d, leases, client):
        await takes_reads_and_sends(d, leases, "first", 3, ids[0])  # ids[0] failed once
        second = await dies_and_is_replaced_by(d, leases, client, "second")
        return await d.claim(second, "0-0", 10, max_deliveries=1, skip=skip)

    claimed = run(scenario)
    assert [offset for offset, _ in claimed.entries] == ids[1:]
    pending = set(delivery_counts())
    assert ids[0] not in pending  # acked either way: the partition moves on
    if skip:  # Nakadi's SKIP_EVENT: counted, nothing stored
        assert (dead_offsets(), skipped()) == ([], 1)
    else:
        assert (dead_offsets(), skipped()) == ([ids[0]], 0)
