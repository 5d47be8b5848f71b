"""Which partitions an ordered session may take: the ones it asks for by name, and those
open to automatic assignment with their current holders
(docs/architecture.md#ordered-subscriptions). The arithmetic of the fair share is
`events/core/rebalance.py`; this is what it is fed.
"""

from __future__ import annotations

from events.core.plan import Plan, Position
from events.core.problems import Problem
from events.core.rebalance import automatic_pool, direct_clash
from events.store.leases import Leases
from events.store.sessions import Sessions


async def claim_direct(
    sessions: Sessions, plan: Plan, session: str, direct: list[Position], live: list[str]
) -> None:
    """Claim the partitions `session` streams by name; 409 if a live session has one."""
    claims = await sessions.direct_claims(plan.subscription)
    clash = direct_clash(claims, live, session, direct)
    if clash is not None:
        message = f"Partition {clash[1]} of {clash[0]!r} is streamed directly by another session."
        raise Problem(409, message)
    await sessions.claim_direct(plan.subscription, session, direct)


async def pool(sessions: Sessions, plan: Plan, live: list[str]) -> tuple[list[Position], list[str]]:
    """The partitions open to automatic assignment and the sessions that share them."""
    claims = await sessions.direct_claims(plan.subscription)
    return automatic_pool([p.position for p in plan.partitions], claims, live)


async def holders(leases: Leases, plan: Plan, positions: list[Position]) -> dict[Position, str]:
    """Who holds each of `positions` now (a partition nobody holds is left out)."""
    partitions = [plan.find(position) for position in positions]
    where = [(p.store_id, p.partition) for p in partitions if p is not None]
    found = await leases.holders(where, plan.subscription)
    return {p: h for p, h in zip(positions, found, strict=True) if h is not None}
