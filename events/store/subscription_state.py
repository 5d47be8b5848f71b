"""A subscription's delivery state as a whole: forgetting it on a cursor reset or a delete,
and the reset lock that keeps new sessions out meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis
from redis.asyncio import Redis as AsyncRedis

from events.store import control, sessions
from events.store.keys import PartitionKeys, resetting_key

RESET_LOCK_SECONDS = 30  # a crashed reset frees the subscription after this


def take_reset_lock(client: redis.Redis, subscription: str) -> bool:
    """True when this caller may reset now; False while another reset runs."""
    return bool(client.set(resetting_key(subscription), "1", nx=True, ex=RESET_LOCK_SECONDS))


def release_reset_lock(client: redis.Redis, subscription: str) -> None:
    client.delete(resetting_key(subscription))


def is_resetting_sync(client: redis.Redis, subscription: str) -> bool:
    return bool(client.exists(resetting_key(subscription)))


async def is_resetting(client: AsyncRedis, subscription: str) -> bool:
    return bool(await client.exists(resetting_key(subscription)))


def close_sessions(client: redis.Redis, subscription: str, message: str) -> None:
    """Every session of the subscription closes (`reset` or `deleted`) and is forgotten."""
    control.publish_sync(client, subscription, message)
    sessions.forget(client, subscription)


def reset_delivery(
    client: redis.Redis, subscription: str, partitions: Sequence[tuple[str, int]]
) -> None:
    """Forget all delivery state of the subscription on these (store id, partition)s:
    leases, groups (with their pending entries), committed offsets and what was sent and
    charged; the next session starts afresh from the database's cursors. The reset
    generation moves, so that a background write that read the old state is refused.
    """
    pipe = client.pipeline(transaction=False)
    for store_id, partition in partitions:
        keys = PartitionKeys(store_id, partition, subscription)
        pipe.incr(keys.generation)
        pipe.delete(*keys.delivery_state())
        pipe.execute_command("XGROUP", "DESTROY", keys.log, subscription)
    pipe.execute(raise_on_error=False)


def forget(client: redis.Redis, subscription: str, partitions: Sequence[tuple[str, int]]) -> None:
    """A deleted subscription: its sessions close with `subscription_deleted`, and its
    leases, groups, committed offsets, dead letters not yet stored and counts of skipped
    events go.
    """
    control.publish_sync(client, subscription, control.DELETED)
    reset_delivery(client, subscription, partitions)
    gone = [PartitionKeys(s, p, subscription) for s, p in partitions]
    client.delete(*(k.dead for k in gone), *(k.skipped for k in gone))
