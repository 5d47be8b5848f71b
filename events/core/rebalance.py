"""Sharing a subscription's partitions fairly among its live sessions: pure functions.

Every session computes the same assignment from the same inputs (the sorted session ids
and the current owners), so sessions on different servers agree without talking.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

from events.core.plan import Position

P = TypeVar("P", bound=Hashable)


class TooManySessions(ValueError):
    """More sessions than partitions: a new session would get nothing (Nakadi answers 409)."""


def fair_share(
    partitions: Sequence[P], sessions: Sequence[str], owners: Mapping[P, str]
) -> dict[P, str]:
    """Assign every partition to a session so that the sessions' counts differ by at most
    one and as few partitions as possible change owner. `owners` is who holds what now
    (sessions that are gone may appear; they are ignored).
    """
    if not sessions:
        return {}
    if len(sessions) > len(partitions):
        raise TooManySessions(f"{len(sessions)} sessions for {len(partitions)} partitions")
    live = sorted(set(sessions))
    held: dict[str, list[P]] = {s: [] for s in live}
    for partition in partitions:
        owner = owners.get(partition)
        if owner in held:
            held[owner].append(partition)
    # The sessions that hold most keep the larger quotas, so that least moves.
    base, extra = divmod(len(partitions), len(live))
    by_holding = sorted(live, key=lambda s: (-len(held[s]), s))
    quota = {s: base + (1 if rank < extra else 0) for rank, s in enumerate(by_holding)}
    assignment: dict[P, str] = {}
    for session in live:
        kept = held[session][: quota[session]]
        assignment.update((partition, session) for partition in kept)
        quota[session] -= len(kept)
    free = iter([p for p in partitions if p not in assignment])
    for session in by_holding:
        assignment.update((next(free), session) for _ in range(quota[session]))
    return assignment


def direct_clash(
    claims: Mapping[str, set[Position]],
    live: Sequence[str],
    session: str,
    wanted: Sequence[Position],
) -> Position | None:
    """The first of the `wanted` partitions that another live session streams directly
    (`claims`: session -> the partitions it asked for by name), or None.
    """
    taken = {p for other, ps in claims.items() if other in live and other != session for p in ps}
    return min((p for p in wanted if p in taken), default=None)


def automatic_pool(
    partitions: Sequence[P], claims: Mapping[str, set[P]], live: Sequence[str]
) -> tuple[list[P], list[str]]:
    """The partitions open to automatic assignment (those no live session streams
    directly), and the live sessions that share them (those that stream none directly).
    """
    direct_sessions = {session for session in claims if session in live}
    direct = {p for session in direct_sessions for p in claims[session]}
    return [p for p in partitions if p not in direct], [s for s in live if s not in direct_sessions]
