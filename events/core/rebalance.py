"""Sharing a subscription's partitions fairly among its live sessions: pure functions.

Every session computes the same assignment from the same inputs (the sorted session ids
and the current owners), so sessions on different servers agree without talking.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

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
