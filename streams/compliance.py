"""Kafka wiring of the compliance agent (govern role): every config change is checked at once.

Attestations and risk acceptances live on the compacted `compliance-attestations` topic (latest
record per kind/control/resource): the host reads it from the start before checking anything,
keeps following it, and mounts the /compliance routes of the control API.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from prometheus_client import Counter, Gauge

from agents.compliance import ComplianceChecker
from agents.compliance_api import ComplianceApi
from agents.control_api import register_extension
from schemas import ComplianceResult, ConfigChange, Event
from schemas.attestations import ATTESTATION_TOPIC, ComplianceAttestation
from schemas.codec import Codec
from schemas.envelope import utc_now
from schemas.errors import BackendUnavailable, DeadLetterError
from streams.app import WorkerContext
from streams.follow import TopicFollower
from streams.metrics import REGISTRY

__all__ = ["EXPIRY_SECONDS", "AttestationLog", "register"]

log = logging.getLogger(__name__)
EXPIRY_SECONDS = 60.0  # how often expired attestations and acceptances are looked for
CHECKS = Counter(
    "novacron_compliance_checks_total",
    "Control results, by standard and outcome",
    ["standard", "outcome"],
    registry=REGISTRY,
)
OPEN = Gauge(
    "novacron_compliance_open_violations",
    "Open violations by severity",
    ["severity"],
    registry=REGISTRY,
)
SCORE = Gauge(
    "novacron_compliance_score_percent",
    "Passed share of the latest result per resource and control, by standard",
    ["standard"],
    registry=REGISTRY,
)
UNKNOWN = Counter(
    "novacron_compliance_unknown_checks_total",
    "Checks whose values are known only after apply (no result is emitted for them)",
    registry=REGISTRY,
)


class AttestationLog:
    """The compacted attestation topic: create it, publish records, read them all."""

    def __init__(self, bootstrap: str, topic: str, codec: Codec | None = None) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.codec = codec or Codec()

    async def ensure_topic(self, partitions: int = 1, replication: int = 1) -> None:
        """Create the topic (compacted) when it does not exist yet."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            if self.topic not in set(await admin.list_topics()):
                await admin.create_topics([NewTopic(
                    self.topic, partitions, replication,
                    topic_configs={"cleanup.policy": "compact"})])
        except TopicAlreadyExistsError:
            pass  # created concurrently: fine
        finally:
            await admin.close()

    async def _partitions(self, attempts: int = 40) -> set[int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            for _ in range(attempts):  # the metadata of a just-created topic may lag a moment
                for t in await admin.describe_topics([self.topic]):
                    if t.get("topic") == self.topic and t.get("partitions"):
                        return {p["partition"] for p in t["partitions"]}
                await asyncio.sleep(0.25)
        finally:
            await admin.close()
        raise BackendUnavailable(f"topic {self.topic} does not exist")

    async def publish(self, records: Iterable[ComplianceAttestation]) -> int:
        """Send records keyed kind/control/resource; returns once the broker acknowledged."""
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await producer.start()
        try:
            sent = [await producer.send(self.topic, self.codec.encode(r), key=r.key.encode())
                    for r in records]
            await asyncio.gather(*sent)
            return len(sent)
        finally:
            await producer.stop()

    async def read_all(self, timeout: float = 10.0) -> list[ComplianceAttestation]:
        """Every record up to the current end of the topic, in log order per key."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        try:
            return await asyncio.wait_for(self._read(consumer), timeout)
        except (TimeoutError, KafkaError) as exc:
            raise BackendUnavailable(f"cannot read {self.topic}: {exc or 'timeout'}") from exc
        finally:
            await consumer.stop()

    async def _read(self, consumer: AIOKafkaConsumer) -> list[ComplianceAttestation]:
        tps = [TopicPartition(self.topic, p) for p in sorted(await self._partitions())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[ComplianceAttestation] = []
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                out += decode_records(self.codec, batch)
        return out


def decode_records(codec: Codec, records: list[ConsumerRecord]) -> list[ComplianceAttestation]:
    """Decode attestation records; a malformed one is logged and skipped, never applied."""
    out = []
    for r in records:
        if r.value is None:
            continue  # a tombstone: compaction removes the key
        try:
            out.append(codec.decode(r.value, ComplianceAttestation))
        except DeadLetterError as exc:
            log.warning("skipped attestation record %s@%d: %s", r.topic, r.offset, exc)
    return out


class _Score:
    """Latest result per (resource, control), so the score reflects the current estate."""

    def __init__(self) -> None:
        self.latest: dict[tuple[str, str], ComplianceResult] = {}

    def update(self, results: list[ComplianceResult]) -> None:
        for r in results:
            self.latest[(r.resource_id, r.control_id)] = r
            for ref in r.standards[:1]:
                CHECKS.labels(ref.split(":", 1)[0], "pass" if r.passed else "fail").inc()
        by_std: dict[str, list[bool]] = {}
        severities: dict[str, int] = {}
        for r in self.latest.values():
            for ref in r.standards:
                by_std.setdefault(ref.split(":", 1)[0], []).append(r.passed)
            if r.status == "open":
                severities[r.severity] = severities.get(r.severity, 0) + 1
        for std, passed in by_std.items():
            SCORE.labels(std).set(100.0 * sum(passed) / len(passed))
        for severity in ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"):
            OPEN.labels(severity).set(severities.get(severity, 0))


def register(app: faust.App, ctx: WorkerContext) -> None:
    """An agent on `config`: results to `compliance`, auto-remediations to `decisions`."""
    checker = ComplianceChecker(ctx.settings.compliance)
    score = _Score()
    ready = asyncio.Event()
    topic = ctx.topic(ATTESTATION_TOPIC)
    register_extension(ComplianceApi(checker.library, checker.attestations))

    async def on_records(records: list[ConsumerRecord]) -> None:
        now = utc_now()
        results = [r for rec in decode_records(ctx.codec, records)
                   for r in checker.on_attestation(rec, now)]
        await _emit(ctx, checker, score, results)

    follower = TopicFollower(ctx.settings.kafka.bootstrap, topic, on_records, from_start=True)

    @app.task
    async def attestations() -> None:
        kafka = ctx.settings.kafka
        await AttestationLog(kafka.bootstrap, topic).ensure_topic(
            kafka.partitions, kafka.replication_factor)
        try:
            await follower.start()
            await follower.catch_up()
            ready.set()
            ctx.health["compliance"] = f"ready: {len(checker.attestations)} attestation records"
            await follower.run()
        finally:
            await follower.stop()

    @app.agent(ctx.raw_topic(app, "config"))
    async def check(stream: faust.StreamT[bytes]) -> None:
        await ready.wait()  # acceptances must be known before a violation is reported
        async for values in stream.take(200, within=0.5):
            changes = ctx.decode_all(values, ConfigChange)
            # Rego evaluation is CPU work (~1 ms per resource): keep the event loop responsive
            results = await asyncio.to_thread(_check_all, checker, changes)
            await _emit(ctx, checker, score, results)
            ctx.metrics.events.labels("compliance", "config").inc(len(changes))

    @app.timer(EXPIRY_SECONDS)
    async def expire() -> None:
        if ready.is_set():
            await _emit(ctx, checker, score, checker.expire(utc_now()))


async def _emit(ctx: WorkerContext, checker: ComplianceChecker, score: _Score,
                results: list[ComplianceResult]) -> None:
    if not results:
        return
    out: list[Event] = list(results)
    out += [d for r in results if (d := checker.remediation(r)) is not None]
    await ctx.emitter.emit(out)
    score.update(results)


def _check_all(checker: ComplianceChecker, changes: list[ConfigChange]) -> list[ComplianceResult]:
    results: list[ComplianceResult] = []
    before = checker.unknown_checks
    for change in changes:
        try:
            results += checker.on_config(change)
        except Exception:  # one broken resource must not stop the agent; the checker fails closed
            log.exception("compliance check of %s failed", change.resource_id)
    UNKNOWN.inc(checker.unknown_checks - before)
    return results
