"""Time seam of the engine: a Clock protocol, the system clock, a virtual clock, backoff delays."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
import time
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

from runbooks.model import RetryPolicy

__all__ = ["Clock", "FakeClock", "SystemClock", "backoff_delay"]

T = TypeVar("T")


class Clock(Protocol):
    """Monotonic time and sleeping; injected so retry timing is testable."""

    def now(self) -> float:
        """Monotonic seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait this long."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class FakeClock:
    """Virtual time: sleeps complete in deadline order as soon as everything else is idle.

    `await clock.run(coro)` drives a coroutine: whenever the event loop has nothing else to do,
    time jumps to the earliest pending sleep. `sleeps` records every requested delay.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.t = start
        self.sleeps: list[float] = []
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (self.t + max(seconds, 0.0), next(self._seq), fut))
        await fut

    def advance(self) -> bool:
        """Jump to the earliest pending sleep and wake it; False when none is pending."""
        while self._heap:
            deadline, _, fut = heapq.heappop(self._heap)
            if fut.done():  # the sleeper was cancelled
                continue
            self.t = max(self.t, deadline)
            fut.set_result(None)
            return True
        return False

    async def run(self, coro: Coroutine[Any, Any, T], idle_spins: int = 50) -> T:
        """Run `coro` to completion under virtual time."""
        task = asyncio.ensure_future(coro)
        while not task.done():
            for _ in range(idle_spins):  # let every ready callback run before time moves
                await asyncio.sleep(0)
                if task.done():
                    break
            if not task.done() and not self.advance():
                await asyncio.sleep(0.001)  # waiting on real I/O (a subprocess, a socket)
        return task.result()


def backoff_delay(policy: RetryPolicy, failed_attempt: int, rng: random.Random) -> float:
    """Seconds to wait after attempt `failed_attempt` (1-based) failed: grow, jitter, cap."""
    n = max(failed_attempt, 1)
    if policy.backoff == "fixed":
        delay = policy.base_delay
    elif policy.backoff == "linear":
        delay = policy.base_delay * n
    else:
        delay = policy.base_delay * policy.multiplier ** min(n - 1, 64)
    if policy.jitter:
        delay *= rng.uniform(1 - policy.jitter, 1 + policy.jitter)
    return min(delay, policy.max_delay)
