"""The control messages of a subscription's sessions, on its pub/sub channel (`ss:ctl:<sub>`;
the hub of each server process listens to every channel and hands them to its sessions):

    rebalance                              membership changed: recompute fair shares
    reset                                  a cursor reset: close with cursor_reset
    deleted                                the subscription is gone: close
    commit <session> <partition> <offset>  the session's client committed (COMMIT script)
    ack <session> <partition> <offsets…>   shared: its client acked these (ACK script)
    lost <session> <partition> <offsets…>  shared: another session claimed these
    resync                                 (from the hub itself) messages may have been lost

A partition is named "<store id>:<number>" in them.
"""

from __future__ import annotations

import redis
from redis.asyncio import Redis as AsyncRedis

from events.store.keys import control_channel

REBALANCE = "rebalance"
RESET = "reset"
DELETED = "deleted"
COMMIT = "commit"
ACK = "ack"
LOST = "lost"
RESYNC = "resync"


def partition_name(store_id: str, partition: int) -> str:
    return f"{store_id}:{partition}"


def parse_partition_name(name: str) -> tuple[str, int]:
    store_id, _, number = name.rpartition(":")
    return store_id, int(number)


def parse(text: str) -> tuple[str, list[str]]:
    """A message's kind and its words after the kind."""
    kind, *rest = text.split(" ")
    return kind, rest


async def publish(client: AsyncRedis, subscription: str, message: str) -> None:
    await client.publish(control_channel(subscription), message)


def publish_sync(client: redis.Redis, subscription: str, message: str) -> None:
    client.publish(control_channel(subscription), message)
