"""The compacted `compliance-attestations` topic: create it, publish records, read them all.

The CLI writes and reads attestations and risk acceptances through `AttestationLog`; the govern
role's host folds the topic into its shared state (agents/shared.py). No metrics live here: this
module is imported by the CLI, which every worker process loads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka import ConsumerRecord
from aiokafka.admin import NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from schemas.attestations import ComplianceAttestation
from schemas.codec import Codec
from schemas.errors import BackendUnavailable, DeadLetterError, NonRetryableError
from streams import kafka_clients
from streams.reader import read_to_end
from streams.settings import KafkaConfig

__all__ = ["AttestationLog", "decode_records"]

log = logging.getLogger(__name__)


class AttestationLog:
    """The compacted attestation topic: create it, publish records, read them all."""

    def __init__(self, kafka: KafkaConfig, topic: str, codec: Codec | None = None) -> None:
        self.kafka, self.topic = kafka, topic
        self.codec = codec or Codec()

    async def ensure_topic(self, partitions: int = 1, replication: int = 1) -> None:
        """Create the topic (compacted) when it does not exist yet."""
        admin = kafka_clients.admin(self.kafka)
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

    async def publish(self, records: Iterable[ComplianceAttestation]) -> int:
        """Send records keyed kind/control/resource; returns once the broker acknowledged."""
        producer = kafka_clients.producer(self.kafka, acks="all")
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
        try:
            records = await asyncio.wait_for(read_to_end(self.kafka, self.topic), timeout)
        except (TimeoutError, KafkaError, NonRetryableError) as exc:
            raise BackendUnavailable(f"cannot read {self.topic}: {exc or 'timeout'}") from exc
        return decode_records(self.codec, records)


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
