"""Signed audit-chain heads on the compacted `audit-heads` topic (and a file), read and written.

The ingest worker reads the latest signed head before it resumes the chain and publishes a new
one after every insert that added audit rows; `novacron audit verify` reads them back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from policies.signing import public_key_of
from schemas.errors import NonRetryableError, RejectedError
from sinks.audit import AuditChain
from sinks.checkpoint import (
    ChainHead,
    SignedHead,
    latest_head,
    load_signing_key,
    read_head_file,
    resume_point,
    sign_head,
    write_head_file,
)
from sinks.config import AuditConfig
from streams.reader import read_to_end
from streams.settings import KafkaConfig

__all__ = ["HEADS_TOPIC", "HeadPublisher", "read_heads", "trusted_keys"]

log = logging.getLogger(__name__)

HEADS_TOPIC = "audit-heads"
"""Logical name of the compacted topic of signed heads (keyed by chain = database)."""


def trusted_keys(cfg: AuditConfig) -> list[str]:
    """The configured public keys plus the public key of a readable signing key file."""
    own = load_signing_key(cfg.signing_key_file)
    return [*cfg.trusted_keys, *([public_key_of(own)] if own else [])]


async def read_heads(kafka: KafkaConfig, topic: str, timeout: float = 15.0) -> list[SignedHead]:
    """Every head on the topic (all partitions, from the beginning up to the current end)."""
    return await asyncio.wait_for(_read_all(kafka, topic), timeout)


async def _read_all(kafka: KafkaConfig, topic: str) -> list[SignedHead]:
    try:
        records = await read_to_end(kafka, topic)
    except NonRetryableError as exc:  # no such topic, or no ACL to read it
        raise RejectedError(str(exc)) from exc
    return _decode([r.value for r in records])


def _decode(values: Sequence[bytes | None]) -> list[SignedHead]:
    heads = []
    for value in values:
        if value is None:
            continue
        try:
            heads.append(SignedHead.from_json(value))
        except RejectedError as exc:  # garbage on the topic anchors nothing; say so
            log.warning("ignored a record of the audit-heads topic: %s", exc)
    return heads


class HeadPublisher:
    """Signs the head after each insert with audit rows; publishes it to Kafka and the file."""

    def __init__(self, cfg: AuditConfig, chain: str, topic: str) -> None:
        self.cfg, self.chain, self.topic = cfg, chain, topic
        self.key = load_signing_key(cfg.signing_key_file)
        self.producer: AIOKafkaProducer | None = None
        self.published = 0
        if self.key is None:
            log.warning("audit heads are NOT signed: %s does not exist, so truncating the audit "
                        "log cannot be detected (`novacron audit keygen`)", cfg.signing_key_file)

    async def latest(self, kafka: KafkaConfig) -> list[SignedHead]:
        """The heads known outside ClickHouse: the topic's and the file's.

        With a signing key the topic must be readable (resuming without it could reuse a seq);
        without one, heads signed earlier are still honoured when they can be read.
        """
        try:
            topic = await read_heads(kafka, self.topic)
        except (RejectedError, OSError, TimeoutError) as exc:
            if self.key is not None:
                raise
            log.warning("could not read %s (%s); resuming from the stored tail", self.topic, exc)
            topic = []
        return [*topic, *read_head_file(self.cfg.head_file)]

    async def resume_chain(self, kafka: KafkaConfig, tail: Mapping[str, Any] | None) -> AuditChain:
        """The writer's chain after max(stored tail, latest trusted signed head)."""
        signed, problems = latest_head(
            await self.latest(kafka), self.chain, trusted_keys(self.cfg)
        )
        for problem in problems:
            log.error("audit heads: %s", problem)
        seq, last_hash = resume_point(tail, signed)
        stored = int(tail["seq"]) if tail else 0
        if stored < seq:
            log.error("audit log truncated: the stored chain ends at seq %d, the signed head is "
                      "seq %d; continuing after the head (`audit verify` reports the gap)",
                      stored, seq)
        return AuditChain(seq, last_hash)

    async def after_insert(self, audit_rows: Sequence[Mapping[str, Any]]) -> SignedHead | None:
        """Sign and publish the head made by the last of the rows just inserted."""
        if self.key is None or not audit_rows or self.producer is None:
            return None
        last = max(audit_rows, key=lambda r: int(r["seq"]))
        signed = sign_head(ChainHead.of_row(self.chain, last), self.key)
        await self.producer.send_and_wait(self.topic, signed.to_json(), key=self.chain.encode())
        if self.cfg.head_file is not None:
            write_head_file(self.cfg.head_file, signed)
        self.published += 1
        return signed
