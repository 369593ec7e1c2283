"""The Faust app factory: one app (and consumer group) per worker role, configured by Settings."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

import faust

from agents.contract import Agent
from agents.ingest import size_limit
from agents.shared import SharedState
from schemas import Event
from schemas.codec import Codec
from schemas.errors import DeadLetterError
from streams import kafka_clients
from streams.emit import Emitter
from streams.metrics import WorkerMetrics, render
from streams.roles import role_index
from streams.settings import Settings
from streams.topics import CATALOGUE

if TYPE_CHECKING:
    from streams.followed import FollowedTopics

__all__ = ["RoleHost", "WorkerContext", "create_app"]

E = TypeVar("E", bound=Event)
log = logging.getLogger(__name__)


class RoleHost(Protocol):
    """What the role's other modules may use of its generic host (streams/runner.py)."""

    def agent(self, name: str) -> Agent:
        """The role's agent of that name."""
        ...

    def exclusive(self) -> AbstractAsyncContextManager[None]:
        """Hold the host: no batch, tick or rebalance runs inside."""
        ...


@dataclass
class WorkerContext:
    """What every wiring module gets: settings, the codec, metrics and the role name."""

    settings: Settings
    role: str
    codec: Codec
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)
    health: dict[str, object] = field(default_factory=dict)
    shared: SharedState | None = None
    """The role's followed compacted state (baselines, ignore rules, deployed model), set by
    the generic host (streams/runner.py): one copy per process for every agent that needs it."""
    followed: FollowedTopics | None = None
    """The readers that feed `shared` (the host's): `need` adds a topic before they start."""
    host: RoleHost | None = None
    """The role's generic host (streams/runner.py), set by its `register`: its agents."""
    _emitter: Emitter | None = None

    @property
    def emitter(self) -> Emitter:
        """The process's batched event producer (created on first use)."""
        if self._emitter is None:
            self._emitter = Emitter(self.settings, self.codec)
        return self._emitter

    def decode_all(self, values: Iterable[bytes | None], expected: type[E]) -> list[E]:
        """Decode a batch with the edge rules; refused records are skipped here (the ingest role
        owns the DLQ: it consumes every topic with the same codec and rules and dead-letters
        exactly these records, so nothing vanishes)."""
        out: list[E] = []
        limit = size_limit(self.codec, CATALOGUE[expected.topic].external_input)
        for value in values:
            try:
                out.append(self.codec.decode(value, expected, max_bytes=limit))
            except DeadLetterError as exc:
                self.metrics.events.labels(self.role, "skipped-invalid").inc()
                log.info("%s: skipped an invalid %s (%s): %s", self.role, expected.event_type,
                         exc.kind, exc.reason[:500])
        return out

    def raw_topic(self, app: faust.App, logical: str) -> faust.TopicT:
        """A Faust topic of raw bytes: agents decode with the codec, once, at their edge."""
        return app.topic(
            self.topic(logical),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )

    def topic(self, logical: str) -> str:
        """Full topic name (with prefix)."""
        return self.settings.kafka.topic(logical)


def create_app(settings: Settings, role: str, web_port: int | None = None) -> faust.App:
    """A Faust app for one role, with /metrics and /health on its web port."""
    prefix = settings.kafka.topic_prefix.rstrip(".") or "novacron"
    app = kafka_clients.faust_app(
        settings.kafka,
        f"{prefix}-{role}",
        store="memory://",
        autodiscover=False,
        web_enabled=True,
        web_host=settings.web.host,
        web_port=web_port or settings.web.port + role_index(role),
        web_bind=settings.web.host,
        topic_partitions=settings.kafka.partitions,
        topic_replication_factor=settings.kafka.replication_factor,
        consumer_auto_offset_reset="earliest",
        datadir=str(settings.data_dir / "faust" / role),
        producer_acks=-1,
        # a SIGKILLed member is noticed after the session timeout; Faust's default (60 s) would
        # hold every partition of a crashed worker for a minute before a restart can take it
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        broker_rebalance_timeout=30.0,
    )
    _register_common_pages(app, role)
    return app


def _register_common_pages(app: faust.App, role: str) -> None:
    @app.page("/metrics")
    async def metrics(view: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return view.bytes(render(role=role), content_type="text/plain; version=0.0.4")

    @app.page("/health")
    async def health(view: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return view.json({"status": "ok", "app": app.conf.id})
