"""The control API's access policies in a role that serves HTTP besides govern (ingest's /sql).

The policies are the compacted `policies` topic folded into a registry, exactly as govern reads
them, so one `access` policy change applies to the control API and to /sql alike. Shipped access
policies the topic does not have yet are applied locally, not published: govern seeds the topic.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiokafka import ConsumerRecord

from agents.access import Authoriser
from policies.backends import make_engine
from policies.registry import PolicyRegistry
from policies.source import load_directory
from schemas import PolicyVersion
from streams.app import WorkerContext
from streams.reader import TopicReader

__all__ = ["AccessHost"]

log = logging.getLogger(__name__)

SHIPPED_POLICIES = Path(__file__).resolve().parents[1] / "policies" / "rego"
"""The policies govern seeds into the topic (same folder as `streams.gate.POLICY_DIR`)."""


class AccessHost:
    """Follows the `policies` topic; `authoriser` is usable once `ready` is set."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self.registry = PolicyRegistry(ctx.settings.policies)
        api = ctx.settings.api
        engine = make_engine(self.registry, ctx.settings.policy_engine)
        self.authoriser = Authoriser(engine, api.tokens, api.access_policy_types)
        self.ready = asyncio.Event()
        self.error = ""
        """Why the policies could not be loaded (shown in /sql's 503), empty when fine."""

    async def _load(self, records: list[ConsumerRecord]) -> None:
        values = [r.value for r in records if r.value is not None]
        for refusal in self.registry.apply_all(self.ctx.decode_all(values, PolicyVersion)):
            log.warning("refused policy version: %s", refusal)

    def _seed_locally(self) -> int:
        files = load_directory(SHIPPED_POLICIES)
        if self.ctx.settings.policy_dir is not None:
            files += load_directory(self.ctx.settings.policy_dir)
        types = set(self.ctx.settings.api.access_policy_types)
        return len(self.registry.seed([p for p in files if p.policy_type in types]))

    async def run(self, retry_seconds: float = 5.0) -> None:
        """Follow the topic until cancelled; a failure is logged, shown in /sql's 503 until the
        policies are loaded, and retried (the sink keeps running meanwhile)."""
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: report, wait, retry
                self.error = f"{type(exc).__name__}: {exc}"
                log.error("access policies: %s; retrying in %.0fs", self.error, retry_seconds)
                await asyncio.sleep(retry_seconds)

    async def _follow(self) -> None:
        """Catch up with the topic, add missing shipped access policies, then keep following."""
        reader = TopicReader(self.ctx.settings.kafka, self.ctx.topic("policies"))
        await reader.start()
        try:
            await reader.catch_up(self._load)
            seeded = self._seed_locally()
            log.info("access policies ready: %d active (%d from policies/ not yet on the topic)",
                     len(self.registry.active()), seeded)
            self.error = ""
            self.ready.set()
            await reader.follow(self._load)
        finally:
            await reader.stop()
