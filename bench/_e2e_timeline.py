"""Where the machine's CPU went while the slowest chains of a bench phase ran.

A thread reads `/proc` every `interval` seconds: each process's own CPU and that of the
programs it ran and waited for (the executor's git), the broker's, and the whole machine's busy
time. A phase's average share (`cpu_share`) hides what a tail is made of: the p99 of a run is
the end of a few bursts of decisions, and what matters is who had the cores then. `during`
averages the samples that fall inside given time windows (the slowest chains' lifetimes).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _ticks(pid: int) -> tuple[int, int]:
    """(own, waited-for children) CPU ticks of a process; (0, 0) once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0, 0
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def _machine_ticks() -> int:
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(ticks) - ticks[3] - ticks[4]  # minus idle and iowait


class CpuTimeline:
    """Cores used per named process (and `.children`), by the machine, and by everything else
    (`rest`), in `interval`-second steps, sampled by a background thread."""

    def __init__(self, pids: dict[str, int], interval: float = 0.1) -> None:
        self.pids, self.interval = pids, interval
        self.samples: list[tuple[float, dict[str, float]]] = []
        """(end of the step, epoch seconds; cores per name over the step)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-timeline", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _read(self) -> dict[str, int]:
        out = {"machine": _machine_ticks()}
        for name, pid in self.pids.items():
            own, children = _ticks(pid)
            out[name], out[f"{name}.children"] = own, children
        return out

    def _run(self) -> None:
        before, t0 = self._read(), time.monotonic()
        while not self._stop.wait(self.interval):
            now, t1 = self._read(), time.monotonic()
            step = t1 - t0
            cores = {k: (now[k] - before[k]) / TICK / step for k in now}
            cores["rest"] = cores["machine"] - sum(v for k, v in cores.items() if k != "machine")
            self.samples.append((time.time(), cores))
            before, t0 = now, t1

    def during(self, windows: Iterable[tuple[float, float]]) -> dict[str, float]:
        """Mean cores per name over the steps that overlap any window (epoch seconds)."""
        spans = sorted(windows)
        inside = [c for end, c in self.samples
                  if any(a < end and end - self.interval < b for a, b in spans)]
        return _mean(inside)

    def overall(self) -> dict[str, float]:
        return _mean([c for _, c in self.samples])


def _mean(samples: list[dict[str, float]]) -> dict[str, float]:
    if not samples:
        return {}
    names = samples[0].keys()
    return {k: round(sum(s[k] for s in samples) / len(samples), 2) for k in names
            if any(s[k] for s in samples)}
