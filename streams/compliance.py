"""The compliance agent's gauges and API routes (govern role), and the attestation topic.

The agent runs in the generic host (streams/wiring.py). Attestations and risk acceptances live on
the compacted `compliance-attestations` topic (latest record per kind/control/resource): the host
folds it into the role's shared state before the first config change is checked and keeps
following it; the agent turns new records and expiries into results on its tick. The CLI writes
and reads the topic through `AttestationLog`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from prometheus_client import Counter, Gauge

from agents.compliance import ComplianceChecker
from agents.compliance_api import ComplianceApi
from agents.control_api import register_extension
from agents.report_api import ScoreApi
from schemas import ComplianceResult, Event
from schemas.attestations import ComplianceAttestation
from schemas.codec import Codec
from schemas.errors import BackendUnavailable, DeadLetterError
from streams.metrics import REGISTRY

__all__ = ["AttestationLog", "ComplianceCompanion", "decode_records"]

log = logging.getLogger(__name__)
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
OPENED = Counter(
    "novacron_compliance_violations_opened_total",
    "Violations opened (new, or reopened after an acceptance expired), by severity",
    ["severity"],
    registry=REGISTRY,
)
UNKNOWN = Counter(
    "novacron_compliance_unknown_checks_total",
    "Checks whose values are known only after apply (no result is emitted for them)",
    registry=REGISTRY,
)
SCORE = Gauge(
    "novacron_compliance_score_percent",
    "Passed share of the latest result per resource and control, by standard",
    ["standard"],
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
            before = self.latest.get((r.resource_id, r.control_id))
            if r.status == "open" and (before is None or before.status != "open"):
                OPENED.labels(r.severity).inc()
            self.latest[(r.resource_id, r.control_id)] = r
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


class ComplianceCompanion:
    """Counts results per standard, keeps the open-violation and score gauges current, mounts
    the /compliance routes on the process's control API."""

    def __init__(self, checker: ComplianceChecker | None = None) -> None:
        self.score = _Score()
        self.checker = checker
        self._unknown = checker.unknown_checks if checker is not None else 0
        if checker is not None:
            register_extension(ComplianceApi(checker.library, checker.attestations))
            register_extension(ScoreApi(lambda: list(self.score.latest.values())))

    def observe(self, events: Sequence[Event]) -> None:
        if self.checker is not None:
            UNKNOWN.inc(self.checker.unknown_checks - self._unknown)
            self._unknown = self.checker.unknown_checks
        results = [e for e in events if isinstance(e, ComplianceResult)]
        if not results:
            return
        self.score.update(results)
        for r in results:
            for ref in r.standards[:1]:
                CHECKS.labels(ref.split(":", 1)[0], "pass" if r.passed else "fail").inc()

    def tick(self) -> None:
        return None

    def forgotten(self, key: str) -> None:
        return None
