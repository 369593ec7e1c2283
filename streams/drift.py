"""Kafka wiring of the drift agent: baselines from `desired`, config changes judged at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import faust
from aiokafka import ConsumerRecord
from prometheus_client import CollectorRegistry, Counter, Gauge

from agents.drift import DriftDetector, IgnoreSet, load_ignores
from schemas import ConfigChange, DesiredState, DriftFinding, Event
from schemas.errors import RejectedError
from streams.app import WorkerContext
from streams.follow import TopicFollower
from streams.metrics import REGISTRY

__all__ = ["DriftHost", "DriftMetrics", "IgnoreFileWatch", "register"]

log = logging.getLogger(__name__)
BATCH_SIZE, BATCH_SECONDS = 500, 0.5
IGNORE_CHECK_SECONDS = 5.0  # how soon `novacron drift ignore add` reaches a running worker


class DriftMetrics:
    """Prometheus metrics of the drift agent (one set per registry)."""

    _cache: dict[int, DriftMetrics] = {}

    def __init__(self, registry: CollectorRegistry) -> None:
        self.findings = Counter("novacron_drift_findings_total", "Drift findings by severity and "
                                "status", ["severity", "status"], registry=registry)
        self.baselines = Gauge("novacron_drift_baselines", "Resources with a baseline",
                               registry=registry)

    @classmethod
    def for_registry(cls, registry: CollectorRegistry = REGISTRY) -> DriftMetrics:
        if id(registry) not in cls._cache:
            cls._cache[id(registry)] = cls(registry)
        return cls._cache[id(registry)]


class DriftHost:
    """Baselines and config changes in, findings and remediation decisions out."""

    def __init__(self, detector: DriftDetector, emit: Callable[[list[Event]], Awaitable[int]]
                 ) -> None:
        self.detector, self.emit = detector, emit
        self.metrics = DriftMetrics.for_registry()

    def baselines(self, states: Iterable[DesiredState]) -> None:
        for s in states:
            self.detector.on_baseline(s)
        self.metrics.baselines.set(len(self.detector.store))

    async def configs(self, changes: Iterable[ConfigChange]) -> list[Event]:
        out: list[Event] = []
        for change in changes:
            try:
                out.extend(self.detector.on_config(change))
            except Exception:  # one odd config must not stop drift detection for every resource
                log.exception("drift detection failed on %s (event %s)", change.resource_id,
                              change.event_id)
        # findings first, then the remediations the gate will evaluate (one await per batch)
        await self.emit(out)
        for e in out:
            if isinstance(e, DriftFinding):
                self.metrics.findings.labels(e.severity, e.status).inc()
        return out


class IgnoreFileWatch:
    """Reloads the CLI's ignore file (`<data_dir>/drift_ignores.yaml`) into the live ignore set."""

    def __init__(self, path: Path, target: IgnoreSet) -> None:
        self.path, self.target = path, target
        self._mtime: float | None = None

    def check(self) -> bool:
        """Replace the rules when the file changed; True when it did."""
        mtime = self.path.stat().st_mtime if self.path.exists() else None
        if mtime == self._mtime:
            return False
        try:
            fresh = load_ignores(self.path)
        except RejectedError as exc:
            log.warning("keeping the previous ignore rules: %s", exc)
            return False
        self._mtime = mtime
        for rule in self.target.rules:
            self.target.remove(rule.rule_id)
        self.target.extend(fresh)
        return True


def register(app: faust.App, ctx: WorkerContext) -> None:
    """Read every baseline, then judge each config change against it."""
    ignores = IgnoreSet()
    watch = IgnoreFileWatch(ctx.settings.data_dir / "drift_ignores.yaml", ignores)
    watch.check()
    detector = DriftDetector(ctx.settings.drift, ignores)
    host = DriftHost(detector, ctx.emitter.emit)
    ready = asyncio.Event()

    async def on_desired(records: list[ConsumerRecord]) -> None:
        host.baselines(ctx.decode_all([r.value for r in records if r.value is not None],
                                      DesiredState))

    # every instance holds every baseline: `desired` is compacted and read from its start on
    # each start (committed group offsets would skip the baselines after a restart)
    desired = TopicFollower(ctx.settings.kafka.bootstrap, ctx.topic("desired"), on_desired,
                            from_start=True)

    @app.task
    async def baselines() -> None:
        try:
            await desired.start()
            await desired.catch_up()
            log.info("drift ready: %d baselines", len(detector.store))
            ctx.health["drift"] = "ready"
            ready.set()
            await desired.run()
        finally:
            await desired.stop()

    @app.agent(ctx.raw_topic(app, "config"))
    async def judge(stream: faust.StreamT[bytes]) -> None:
        await ready.wait()
        async for values in stream.take(BATCH_SIZE, within=BATCH_SECONDS):
            # a baseline published before this config must be known before it is judged
            await desired.catch_up()
            await host.configs(ctx.decode_all(values, ConfigChange))
            ctx.metrics.events.labels("drift", "config").inc(len(values))

    @app.timer(IGNORE_CHECK_SECONDS)
    async def reload_ignores() -> None:
        if watch.check():
            log.info("drift ignore rules reloaded from %s", watch.path)

    @app.page("/drift")
    async def drift_status(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return web.json({"ready": ready.is_set(), "baselines": len(detector.store),
                         "ignore_rules": len(ignores.rules)})

