"""The `collect` role: Prometheus remote-write and Alertmanager webhooks over HTTP → Kafka.

A request is answered 2xx only after Kafka acknowledged every event it produced (samples, dead
letters, decisions, alert state), 503 when Kafka cannot (Prometheus and Alertmanager retry), and
4xx only for a request that can never succeed. Mapping state is committed after the ack, so a
retried request maps to the same events with the same ids.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import faust
from prometheus_client import CollectorRegistry, Counter, Gauge

from agents.collectors import (
    AlertReceiver,
    CollectorConfig,
    RemoteWriteMapper,
    decode_write_request,
    http_status,
)
from agents.collectors.alerts import ALERT_EDGE
from agents.collectors.rejections import EDGE_TOPIC, request_dead_letter
from schemas import utc_now
from schemas.errors import BackendUnavailable, DeadLetterError, OversizedMessage
from streams.app import WorkerContext
from streams.collect_kafka import (
    STATE_TOPIC,
    KafkaPublisher,
    MemoryPublisher,
    Publisher,
    StateRecord,
    load_state,
)
from streams.metrics import REGISTRY

__all__ = [
    "STATE_TOPIC",
    "CollectorHost",
    "KafkaPublisher",
    "MemoryPublisher",
    "Publisher",
    "register",
]

log = logging.getLogger(__name__)


class ProcessingFailed(DeadLetterError):
    """A request that decoded but could not be processed: retrying it cannot help (400)."""

    kind = "processing"


class CollectorMetrics:
    """Prometheus metrics of the collect role (one set per registry)."""

    _cache: dict[int, CollectorMetrics] = {}

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "novacron_collect_requests_total", "Collector HTTP requests by endpoint and status",
            ["endpoint", "code"], registry=registry)
        self.samples = Counter(
            "novacron_remote_write_samples_total", "Remote-write samples by result (accepted, "
            "stale, duplicate, unmapped, rejected)", ["result"], registry=registry)
        self.rejected = Counter(
            "novacron_remote_write_rejected_samples_total", "Rejected (dead-lettered) remote-write "
            "samples by reason", ["reason"], registry=registry)
        self.published = Counter(
            "novacron_remote_write_metric_samples_total", "MetricSamples published to `metrics`",
            registry=registry)
        self.series = Gauge(
            "novacron_remote_write_series", "Series whose last sample the receiver holds",
            registry=registry)
        self.alerts = Counter(
            "novacron_alerts_total", "Alertmanager alerts by result (decided, repeat, resolved, "
            "unmapped, rejected)", ["result"], registry=registry)
        self.open_alerts = Gauge(
            "novacron_alerts_open", "Firing alerts that already produced a decision",
            registry=registry)

    @classmethod
    def for_registry(cls, registry: CollectorRegistry = REGISTRY) -> CollectorMetrics:
        """The process's metric set (a registry refuses the same names twice)."""
        if id(registry) not in cls._cache:
            cls._cache[id(registry)] = cls(registry)
        return cls._cache[id(registry)]


Answer = tuple[int, str]


class CollectorHost:
    """HTTP semantics around the pure mapper and alert receiver; knows nothing of aiohttp."""

    def __init__(
        self,
        config: CollectorConfig,
        publisher: Publisher,
        *,
        metrics: CollectorMetrics | None = None,
    ) -> None:
        self.config = config
        self.publisher = publisher
        self.mapper = RemoteWriteMapper(config.remote_write)
        self.alerts = AlertReceiver(config.alerts)
        self.metrics = metrics or CollectorMetrics.for_registry()

    def authorised(self, headers: Mapping[str, str]) -> bool:
        """True without configured tokens, else when the bearer token's SHA-256 is listed."""
        if not self.config.bearer_token_sha256:
            return True
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        digest = hashlib.sha256(token.strip().encode()).hexdigest()
        return any(hmac.compare_digest(digest, h) for h in self.config.bearer_token_sha256)

    async def remote_write(self, headers: Mapping[str, str], body: bytes) -> Answer:
        """Handle one remote-write request; returns (status, message)."""
        cfg = self.config.remote_write
        now = utc_now()
        try:
            series = decode_write_request(
                body,
                headers.get("Content-Type"),
                headers.get("Content-Encoding"),
                max_body_bytes=cfg.max_body_bytes,
                max_decoded_bytes=cfg.max_decoded_bytes,
                max_samples=cfg.max_samples_per_request,
            )
        except DeadLetterError as exc:
            return await self._refuse("remote_write", EDGE_TOPIC, body, exc, now)
        try:
            mapped = self.mapper.map(series, now)
        except Exception as exc:  # a bug must not make Prometheus retry this request forever
            log.exception("remote-write request could not be mapped")
            failure = ProcessingFailed(f"processing failed: {type(exc).__name__}: {exc}")
            return await self._refuse("remote_write", EDGE_TOPIC, body, failure, now)
        try:
            await self.publisher.publish(mapped.events)
        except BackendUnavailable as exc:
            return self._unavailable("remote_write", exc)
        self.mapper.commit(mapped)
        self._count_remote_write(mapped.counts, mapped.rejected, len(mapped.samples))
        return self._answer("remote_write", 204, "")

    def _count_remote_write(
        self, counts: Mapping[str, int], rejected: Mapping[str, int], published: int
    ) -> None:
        m = self.metrics
        for result, n in counts.items():
            m.samples.labels(result).inc(n)
        for reason, n in rejected.items():
            m.samples.labels("rejected").inc(n)
            m.rejected.labels(reason).inc(n)
        m.published.inc(published)
        m.series.set(len(self.mapper))

    async def alertmanager(self, body: bytes) -> Answer:
        """Handle one Alertmanager webhook notification; returns (status, message)."""
        now = utc_now()
        try:
            result = self.alerts.handle(body, now)
        except DeadLetterError as exc:
            return await self._refuse("alertmanager", ALERT_EDGE, body, exc, now)
        except Exception as exc:  # a bug must not make Alertmanager retry this forever
            log.exception("alert notification could not be handled")
            failure = ProcessingFailed(f"processing failed: {type(exc).__name__}: {exc}")
            return await self._refuse("alertmanager", ALERT_EDGE, body, failure, now)
        try:
            await self.publisher.publish(result.events, self.alerts.state_records(result))
        except BackendUnavailable as exc:
            return self._unavailable("alertmanager", exc)
        self.alerts.commit(result)
        for outcome, n in result.counts.items():
            self.metrics.alerts.labels(outcome).inc(n)
        self.metrics.open_alerts.set(len(self.alerts.open_alerts()))
        return self._answer("alertmanager", 200, "ok")

    def restore_alerts(self, records: Iterable[StateRecord]) -> int:
        """Load open alerts from the state topic (latest record per key wins)."""
        for key, blob in records:
            if blob is None:
                self.alerts.forget(key)
            else:
                self.alerts.restore(key, blob)
        self.metrics.open_alerts.set(len(self.alerts.open_alerts()))
        return len(self.alerts.open_alerts())

    async def _refuse(
        self, endpoint: str, edge: str, body: bytes, exc: DeadLetterError, now: datetime
    ) -> Answer:
        status = http_status(exc)
        letter = request_dead_letter(body, f"{status}: {exc.reason}", exc.kind, now, edge=edge)
        try:  # nice to keep; the request fails either way, so Kafka trouble does not change it
            await self.publisher.publish([letter])
        except BackendUnavailable:
            log.warning("could not dead-letter a refused %s request: %s", endpoint, exc.reason)
        return self._answer(endpoint, status, exc.reason)

    async def oversized(self, endpoint: str, limit: int) -> Answer:
        """Refuse (413) and dead-letter a body larger than `limit`, which was not read."""
        edge = EDGE_TOPIC if endpoint == "remote_write" else ALERT_EDGE
        exc = OversizedMessage(f"request body larger than {limit} bytes")
        return await self._refuse(endpoint, edge, b"", exc, utc_now())

    def unauthorised(self, endpoint: str) -> Answer:
        """Refuse (401) a request without an accepted bearer token."""
        return self._answer(endpoint, 401, "missing or unknown bearer token")

    def _unavailable(self, endpoint: str, exc: BackendUnavailable) -> Answer:
        log.warning("%s: answering 503, %s", endpoint, exc)
        return self._answer(endpoint, 503, "Kafka unavailable, retry later")

    def _answer(self, endpoint: str, status: int, message: str) -> Answer:
        self.metrics.requests.labels(endpoint, str(status)).inc()
        return status, message


async def read_body(request: Any, limit: int) -> bytes | None:
    """The request body, or None once it exceeds `limit` bytes (read no further than that).

    `request` is aiohttp's (Faust's web driver): its stream is read in chunks, not at once."""
    declared = request.content_length
    if declared is not None and declared > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(65536):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def register(app: faust.App, ctx: WorkerContext) -> None:
    """Serve /api/v1/write and /api/v1/alerts on the role's web port."""
    config = ctx.settings.collect
    publisher = KafkaPublisher(ctx.settings, ctx.codec, config.kafka_timeout_seconds)
    host = CollectorHost(config, publisher)
    ready = asyncio.Event()
    ctx.health["alerts"] = "loading open alerts"

    @app.task
    async def restore() -> None:
        delay = 1.0
        while not ready.is_set():
            try:
                opened = host.restore_alerts(await load_state(ctx.settings))
                ready.set()
                ctx.health["alerts"] = f"ready ({opened} open)"
            except Exception as exc:  # Kafka down, topic missing: keep answering 503 and retry
                log.warning("collect: open alerts not loaded yet: %r", exc)
                ctx.health["alerts"] = f"waiting for Kafka: {exc!r}"
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    @app.timer(60.0)
    async def prune() -> None:
        host.mapper.prune(utc_now())
        host.metrics.series.set(len(host.mapper))

    @app.page("/api/v1/write")
    class RemoteWriteView(faust.web.View):
        """Prometheus remote-write 1.0 receiver (snappy protobuf WriteRequest)."""

        async def post(self, request: faust.web.Request) -> faust.web.Response:
            limit = config.remote_write.max_body_bytes
            if not host.authorised(request.headers):
                status, message = host.unauthorised("remote_write")
            elif (body := await read_body(request, limit)) is None:
                status, message = await host.oversized("remote_write", limit)
            else:
                status, message = await host.remote_write(request.headers, body)
            return self.text(message + "\n" if message else "", status=status)

    @app.page("/api/v1/alerts")
    class AlertmanagerView(faust.web.View):
        """Alertmanager webhook receiver (webhook_configs url)."""

        async def post(self, request: faust.web.Request) -> faust.web.Response:
            limit = config.alerts.max_body_bytes
            if not host.authorised(request.headers):
                status, message = host.unauthorised("alertmanager")
            elif not ready.is_set():
                status, message = 503, "loading open alerts, retry later"
            elif (body := await read_body(request, limit)) is None:
                status, message = await host.oversized("alertmanager", limit)
            else:
                status, message = await host.alertmanager(body)
            return self.text(message + "\n", status=status)
