"""Where a worker's CPU goes during a bench phase: py-spy samples summarised per function."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

OWN = ("streams/", "agents/", "models/", "policies/", "schemas/", "sinks/", "runbooks/")


class Sampler:
    """`py-spy record` of one process (active threads only) for a fixed time, raw output.

    Non-blocking: by default py-spy stops the process for each sample, 100 times a second, and
    those stops are latency of their own. With them, the roles on the path at 1,000 samples/s
    measured an action p99 of 343.8 ms; without them 71.0 ms, as unprofiled runs (61.6–74.0;
    bench/README.md, ninth session). A sample may now catch a stack mid-change: it is a share
    of CPU, not an exact trace."""

    def __init__(self, py_spy: str, pid: int, seconds: float, out: Path) -> None:
        self.out = out
        self.proc = subprocess.Popen(
            [py_spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "100", "-f", "raw",
             "--nonblocking",
             "-t", "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def summary(self, top: int = 25) -> dict[str, Any]:
        """Share of CPU samples per function (inclusive), project frames and the leaves."""
        self.proc.wait(60)
        if not self.out.exists():
            return {"error": "py-spy wrote nothing (permissions?)"}
        inclusive: Counter[str] = Counter()
        leaves: Counter[str] = Counter()
        total = 0
        for line in self.out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            n = int(count)
            frames = stack.split(";")
            total += n
            leaves[_short(frames[-1])] += n
            for f in {_short(f) for f in frames if any(o in f for o in OWN)}:
                inclusive[f] += n
        share = lambda c: [[f, round(n / total, 3)] for f, n in c.most_common(top)]  # noqa: E731
        return {"samples": total, "project_functions_inclusive": share(inclusive),
                "leaf_functions": share(leaves)}


def _short(frame: str) -> str:
    """`func (path/to/file.py:12)` → `func (file.py:12)`, keeping the package folder."""
    name, _, where = frame.partition(" (")
    parts = where.rstrip(")").split("/")
    return f"{name} ({'/'.join(parts[-2:])})" if where else name
