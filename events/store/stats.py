"""Where a subscription stands on each partition: owner, unconsumed events, time lag.
Read-only Redis reads, for `GET /api/subscriptions/{id}/stats` and the admin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from events.core.offsets import BEGIN, parse_offset
from events.core.plan import Partition, Plan
from events.store import sessions
from events.store.clock import now_ms
from events.store.connections import redis_client
from events.store.keys import committed_key, lease_key, log_key


@dataclass(frozen=True)
class PartitionStats:
    partition: Partition
    state: str  # assigned | reassigning | unassigned
    session: str | None  # the session streaming it (shown as Nakadi's stream_id)
    direct: bool  # streamed by a session that asked for it by name
    committed: str
    unconsumed_events: int | None  # None: unknown without scanning the partition
    consumer_lag_seconds: int
    pending: int | None = None  # delivered, not committed; None: no consumer group yet

    def as_json(self, show_time_lag: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "partition": str(self.partition.partition),
            "state": self.state,
            "assignment_type": "direct" if self.direct else "auto",
        }
        if self.unconsumed_events is not None:
            out["unconsumed_events"] = self.unconsumed_events
        if self.session:
            out["stream_id"] = self.session
        if show_time_lag:
            out["consumer_lag_seconds"] = self.consumer_lag_seconds
        return out


def partition_stats(plan: Plan, client: redis.Redis | None = None) -> list[PartitionStats]:
    """Stats of every partition of the subscription, in a few pipelined round trips."""
    client = client or redis_client()
    now = now_ms(client)  # for the time lag
    live = set(sessions.live_sync(client, plan.subscription))
    claims = sessions.direct_claims_sync(client, plan.subscription)
    direct = {p for session, taken in claims.items() if session in live for p in taken}
    pipe = client.pipeline(transaction=False)
    for p in plan.partitions:
        key = log_key(p.store_id, p.partition)
        pipe.hget(lease_key(p.store_id, p.partition, plan.subscription), "session")
        pipe.get(committed_key(p.store_id, p.partition, plan.subscription))
        pipe.xinfo_groups(key)
        pipe.xpending(key, plan.subscription)
        pipe.xlen(key)
        pipe.xrevrange(key, count=1)
    replies = pipe.execute(raise_on_error=False)
    rows = [replies[6 * i : 6 * i + 6] for i in range(len(plan.partitions))]
    committed = [
        stored.decode() if isinstance(stored, bytes) else plan.offsets.get(p.position, BEGIN)
        for p, (_, stored, *_) in zip(plan.partitions, rows, strict=True)
    ]
    pipe = client.pipeline(transaction=False)
    for p, offset in zip(plan.partitions, committed, strict=True):
        pipe.xrange(log_key(p.store_id, p.partition), _after(offset), count=1)
    oldest_unconsumed = pipe.execute()
    out = []
    for p, row, offset, oldest in zip(
        plan.partitions, rows, committed, oldest_unconsumed, strict=True
    ):
        holder, _, groups, pending, length, newest = row
        lag = max(0, (now - parse_offset(oldest[0][0].decode())[0]) // 1000) if oldest else 0
        owner = holder.decode() if isinstance(holder, bytes) else None
        if owner is None:
            state = "unassigned"
        elif owner in live:
            state = "assigned"
        else:
            state = "reassigning"  # its session is not live (a lease ends with its session)
        unconsumed = _unconsumed(_group(groups, plan.subscription), pending, length, newest, offset)
        pending_count = None if isinstance(pending, Exception) else int(pending["pending"])
        out.append(
            PartitionStats(
                p, state, owner, p.position in direct, offset, unconsumed, int(lag), pending_count
            )
        )
    return out


def _unconsumed(
    group: dict[str, Any] | None, pending: Any, length: Any, newest: Any, committed: str
) -> int | None:
    """Events after the committed offset: the group's lag (not yet delivered) plus its
    pending entries (delivered, not committed). Without a group: the whole partition from
    BEGIN, none when nothing came after the offset, else unknown (None; Nakadi's field is
    optional) rather than a scan of the partition.
    """
    if group is not None and group.get("lag") is not None and not isinstance(pending, Exception):
        return int(group["lag"]) + int(pending["pending"])
    if not oldest_after(newest, committed):
        return 0
    if committed == BEGIN and isinstance(length, int):
        return length
    return None


def oldest_after(newest: Any, committed: str) -> bool:
    """True when the partition's newest entry comes after the committed offset."""
    if isinstance(newest, Exception) or not newest:
        return False
    return parse_offset(newest[0][0].decode()) > parse_offset(committed)


def _group(groups: Any, name: str) -> dict[str, Any] | None:
    if isinstance(groups, Exception):
        return None
    for group in groups:
        if group["name"].decode() == name:
            return dict(group)
    return None


def _after(offset: str) -> str:
    return "-" if offset == BEGIN else f"({offset}"


def render(plan: Plan, stats: list[PartitionStats], show_time_lag: bool) -> dict[str, Any]:
    """Nakadi's SubscriptionEventTypeStats list."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    for s in stats:
        by_type.setdefault(s.partition.event_type, []).append(s.as_json(show_time_lag))
    return {"items": [{"event_type": name, "partitions": parts} for name, parts in by_type.items()]}
