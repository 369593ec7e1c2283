"""The simulator's Kafka host: publish each tick's metrics and configs; the world reconciles from
its git config repository (the executor's `git` steps change it), never from `actions` directly,
and the simulator never emits action outcomes (only the executor does)."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaProducer

from agents.simulator.gitops import GitOpsReconciler, seed_repository
from agents.simulator.world import World
from schemas import DesiredState, Event
from schemas.codec import WireFormat
from schemas.errors import RejectedError
from streams import kafka_clients
from streams.settings import Settings

__all__ = ["SimulatorHost", "SimulatorStats", "follow_repository", "replay_start"]

log = logging.getLogger(__name__)


def replay_start(ticks: int, interval_seconds: float, now: datetime | None = None) -> datetime:
    """The simulated start that makes a run of `ticks` end now (whole minutes).

    An accelerated clock runs ahead of the wall clock; the edge refuses event times more than
    `edge.max_future_seconds` ahead, so a run that should land in full replays the recent past.
    """
    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    return now - timedelta(seconds=ticks * interval_seconds)


def follow_repository(world: World, repo: Path) -> GitOpsReconciler:
    """A reconciler that keeps `world` equal to the config repository at `repo` (a bare
    repository, created from the world's current state when it does not exist yet)."""
    seed_repository(world, repo)
    return GitOpsReconciler(world, str(repo), Path(tempfile.mkdtemp(prefix="novacron-gitops-")))


@dataclass
class SimulatorStats:
    """What a run published and applied."""

    ticks: int = 0
    metrics: int = 0
    configs: int = 0
    baselines: int = 0
    commits: int = 0
    """New config-repository commits the world reconciled to."""
    reconciled: int = 0
    """Changes the world made to match the repository (scalings, features, configs)."""


class SimulatorHost:
    """Runs a World on an accelerated clock against Kafka (one tick every `tick_seconds`)."""

    def __init__(
        self,
        world: World,
        settings: Settings,
        tick_seconds: float = 0.5,
        fmt: WireFormat = "json",
        on_tick: Callable[[SimulatorStats], None] | None = None,
        publish_baselines: bool = True,
        gitops: GitOpsReconciler | None = None,
    ) -> None:
        self.world = world
        self.settings = settings
        self.tick_seconds = tick_seconds
        self.fmt = fmt
        self.codec = settings.codec()
        self.stats = SimulatorStats()
        self.on_tick = on_tick
        self.publish_baselines = publish_baselines
        self.gitops = gitops
        self._producer: AIOKafkaProducer | None = None
        self._warned_ahead = False

    async def run(self, ticks: int) -> SimulatorStats:
        """Publish `ticks` ticks (0 = until cancelled), reconciling from git before each."""
        kafka = self.settings.kafka
        self._producer = kafka_clients.producer(kafka, acks="all", linger_ms=5)
        await self._producer.start()
        try:
            if self.publish_baselines:
                await self._declare(list(self.world.book.baseline))
            n = 0
            while ticks == 0 or n < ticks:
                await self._reconcile()
                await self._tick()
                n += 1
                await asyncio.sleep(self.tick_seconds)
            await self._producer.flush()
        finally:
            await self._producer.stop()
        return self.stats

    async def _reconcile(self) -> None:
        if self.gitops is None:
            return
        try:
            done = await asyncio.to_thread(self.gitops.reconcile)
        except RejectedError as exc:  # the repository is unreachable: keep running, say so
            log.warning("gitops: %s", exc)
            return
        self.stats.commits += int(done.new_commit)
        self.stats.reconciled += len(done.applied)
        for error in done.errors:
            log.warning("gitops: %s", error)

    async def _declare(self, resource_ids: list[str]) -> None:
        """Publish the declared baselines (the simulator plays the team's IaC repository)."""
        for rid in resource_ids:
            current = self.world.book.current.get(rid)
            baseline = self.world.book.baseline.get(rid)
            if current is None or baseline is None:
                continue
            await self._send(DesiredState(
                resource_id=rid, resource_type=current[0], config=baseline, origin="api",
                author="novacron.simulator", source="novacron.simulator",
                event_time=self.world.now,
            ))
        self.stats.baselines += len(resource_ids)

    async def _tick(self) -> None:
        tick = self.world.step()
        self._warn_if_ahead(tick.time)
        if self.publish_baselines:  # resources created by scale-ups get their baseline first
            await self._declare([c.resource_id for c in tick.configs if c.op == "create"])
        for event in [*tick.metrics, *tick.configs]:
            await self._send(event)
        self.stats.ticks += 1
        self.stats.metrics += len(tick.metrics)
        self.stats.configs += len(tick.configs)
        if self.on_tick:
            self.on_tick(self.stats)

    def _warn_if_ahead(self, simulated: datetime) -> None:
        ahead = (simulated - datetime.now(UTC)).total_seconds()
        if ahead > self.settings.edge.max_future_seconds and not self._warned_ahead:
            self._warned_ahead = True
            log.warning(
                "simulated time %s is %.0f s ahead of the clock: the edge dead-letters events "
                "more than edge.max_future_seconds ahead; start earlier or slow the clock",
                simulated.isoformat(), ahead,
            )

    async def _send(self, event: Event) -> None:
        assert self._producer is not None
        topic = self.settings.kafka.topic(event.topic)
        value = self.codec.encode(event.stamped(), self.fmt)
        await self._producer.send(topic, value, key=event.key.encode())
