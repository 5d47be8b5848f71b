"""CPU accounting of one benchmark phase: what each process group, this process, the
kernel's threads and the rest of the machine used while it ran.
"""

from __future__ import annotations

import math
import time

from bench.common import cpu_seconds, kernel_threads_cpu_seconds, machine_busy_seconds


class CpuUse:
    """A measurement's CPU seconds by process (`cpu`, from a `CpuMeter`) over `cpu_wall`
    seconds of wall time.
    """

    cpu: dict[str, float]
    cpu_wall: float

    def cpu_percent(self, process: str) -> float:
        """CPU `process` used during the measurement, in % of one core; NaN if unknown."""
        return 100 * self.cpu.get(process, math.nan) / self.cpu_wall if self.cpu_wall else math.nan


class CpuMeter:
    """Started on creation; `stop()` returns the CPU seconds used since, and the wall time."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        """`pids`: name → processes, e.g. {"daphne": [...], "redis": [...]}."""
        self._pids = pids
        self._before = self._sample()
        self._started = time.perf_counter()

    def _sample(self) -> dict[str, float]:
        sample = {}
        for name, group in self._pids.items():  # each process too ("/" in the name)
            each = {f"{name}/{pid}": cpu_seconds(pid) for pid in group}
            sample[name] = sum(each.values())
            sample.update(each)
        sample["bench"] = cpu_seconds()
        sample["kernel"] = kernel_threads_cpu_seconds()
        sample["machine"] = machine_busy_seconds()
        return sample

    def stop(self) -> tuple[dict[str, float], float]:
        """CPU seconds by name, "bench", "kernel", "other" (the rest of the machine) and
        "<name> busiest" (the busiest of a group's processes), and the wall time since.
        """
        after = self._sample()
        used = {name: after[name] - self._before[name] for name in after if "/" not in name}
        # What the rest of the machine took meanwhile (clock ticks round: never below 0).
        used["other"] = max(0.0, used.pop("machine") - sum(used.values()))
        for name in (name for name, pids in self._pids.items() if len(pids) > 1):
            used[f"{name} busiest"] = max(
                (after[k] - self._before[k] for k in after if k.startswith(f"{name}/")),
                default=0.0,
            )
        return used, time.perf_counter() - self._started
