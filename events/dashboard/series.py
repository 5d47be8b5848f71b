"""Pure arithmetic on sampled counters, for the dashboard's charts."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

Point = tuple[float, float]  # (seconds since the epoch, value): uPlot's x and y


def rates(samples: Sequence[tuple[int, int]]) -> list[Point]:
    """Events per second between consecutive (at ms, count) samples, each at the later
    sample's time. A count that went down (Redis lost its data) is a rate of 0, not a
    negative one; samples at the same moment give no point.
    """
    points = []
    for (before, first), (after, second) in itertools.pairwise(samples):
        if after <= before:
            continue
        per_second = max(0, second - first) * 1000 / (after - before)
        points.append((after / 1000, round(per_second, 3)))
    return points
