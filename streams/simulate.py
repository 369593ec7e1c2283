"""The simulator's Kafka host: publish each tick's metrics and configs, apply arriving actions."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from agents.simulator.world import World
from schemas import Action, DesiredState, Event
from schemas.codec import WireFormat
from schemas.errors import DeadLetterError, RejectedError
from streams.settings import Settings

__all__ = ["SimulatorHost", "SimulatorStats", "replay_start"]

log = logging.getLogger(__name__)


def replay_start(ticks: int, interval_seconds: float, now: datetime | None = None) -> datetime:
    """The simulated start that makes a run of `ticks` end now (whole minutes).

    An accelerated clock runs ahead of the wall clock; the edge refuses event times more than
    `edge.max_future_seconds` ahead, so a run that should land in full replays the recent past.
    """
    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    return now - timedelta(seconds=ticks * interval_seconds)


@dataclass
class SimulatorStats:
    """What a run published and applied."""

    ticks: int = 0
    metrics: int = 0
    configs: int = 0
    actions_applied: int = 0
    actions_rejected: int = 0
    baselines: int = 0


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
    ) -> None:
        self.world = world
        self.settings = settings
        self.tick_seconds = tick_seconds
        self.fmt = fmt
        self.codec = settings.codec()
        self.stats = SimulatorStats()
        self.on_tick = on_tick
        self.publish_baselines = publish_baselines
        self._producer: AIOKafkaProducer | None = None
        self._warned_ahead = False

    async def run(self, ticks: int) -> SimulatorStats:
        """Publish `ticks` ticks (0 = until cancelled), applying actions as they arrive."""
        kafka = self.settings.kafka
        self._producer = AIOKafkaProducer(
            bootstrap_servers=kafka.bootstrap, acks="all", linger_ms=5
        )
        consumer = AIOKafkaConsumer(
            kafka.topic("actions"),
            bootstrap_servers=kafka.bootstrap,
            group_id=f"{kafka.topic_prefix}simulator",
            auto_offset_reset="latest",
            enable_auto_commit=True,
        )
        await self._producer.start()
        await consumer.start()
        try:
            if self.publish_baselines:
                await self._declare(list(self.world.book.baseline))
            n = 0
            while ticks == 0 or n < ticks:
                await self._tick()
                await self._apply_actions(consumer)
                n += 1
                await asyncio.sleep(self.tick_seconds)
            await self._producer.flush()
        finally:
            await consumer.stop()
            await self._producer.stop()
        return self.stats

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
        await self._producer.send(topic, self.codec.encode(event, self.fmt), key=event.key.encode())

    async def _apply_actions(self, consumer: AIOKafkaConsumer) -> None:
        batches = await consumer.getmany(timeout_ms=10)
        for records in batches.values():
            for rec in records:
                await self._apply_one(rec.value)

    async def _apply_one(self, raw: bytes | None) -> None:
        try:
            action = self.codec.decode(raw, Action)
        except DeadLetterError as exc:  # the ingest role dead-letters it; we only skip it
            log.warning("skipping undecodable action: %s", exc.reason)
            return
        try:
            outcome = self.world.apply(action)
        except RejectedError as exc:
            self.stats.actions_rejected += 1
            log.warning("action %s rejected by the world: %s", action.action_id, exc)
            return
        self.stats.actions_applied += 1
        await self._send(outcome)
