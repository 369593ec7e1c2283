"""Safe online learning on the real broker: a learn worker with online training fine-tunes the
shipped model from live samples, shadow-evaluates each candidate on the recent demand it saw, and
its verdict (promoted or rejected, with the numbers) lands in ClickHouse, `model_promotions`,
with an audit row."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from models.dqn.checkpoints import CheckpointStore
from schemas import MetricSample
from schemas.envelope import utc_now
from tests.integration.conftest import wait_until
from tests.integration.records import CODEC, _send

PRETRAINED = Path(__file__).parents[2] / "models" / "dqn" / "pretrained"
SHIPPED = f"shipped-{CheckpointStore(PRETRAINED).current()}"
"""The version the learn worker deploys: the shipped folder's current one."""

pytestmark = pytest.mark.kafka
ONLINE = {
    "NOVACRON_DECISION_HOST__ONLINE_TRAINING": "true",
    "NOVACRON_DECISION_HOST__PUBLISH_EVERY": "50",  # a candidate soon after the warm-up
    "NOVACRON_DECISION_HOST__SHADOW__MIN_SAMPLES": "200",
    "NOVACRON_DECISION_HOST__SHADOW__MAX_SERVICES": "2",
}


def samples(services: int = 4, n: int = 700) -> list[MetricSample]:
    """Recent calm telemetry of a few services (the last one now): enough closed transitions for
    the trainer's warm-up (1,000, the shipped model's config) and history for the shadow
    evaluation."""
    rng = np.random.default_rng(5)
    start = utc_now() - timedelta(minutes=n)
    out = []
    for i in range(n):
        for s in range(services):
            rate = 300 + 150 * np.sin(i / 60 + s) + rng.normal(0, 10)
            out.append(MetricSample(
                resource_id=f"svc-{s}", resource_type="service", source="test",
                event_time=start + timedelta(minutes=i), request_rate=float(rate),
                cpu_usage=float(np.clip(rate / 8, 5, 95)), memory_usage=40.0,
                network_latency_ms=80.0, error_rate=0.0, active_vms=4, cost_per_hour=0.4))
    return out


def test_a_candidate_verdict_lands_in_model_promotions(worker_factory, kafka_cfg
                                                       ) -> None:  # type: ignore[no-untyped-def]
    ingest = worker_factory("ingest")
    worker_factory("learn", **ONLINE)
    batch = samples()
    asyncio.run(_send(kafka_cfg, "metrics", [(s.key.encode(), CODEC.encode(s)) for s in batch]))

    def verdicts() -> list[dict[str, object]]:
        return ingest.sql(
            "SELECT status, candidate, base_version, deployed_version, grad_steps, "
            "candidate_violation_pct, deployed_violation_pct, candidate_cost, deployed_cost, "
            "budget_pct, services, ticks, reason, source FROM novacron.model_promotions FINAL "
            "ORDER BY event_time")

    rows = wait_until(verdicts, timeout=180, interval=2, what="a promotion verdict in ClickHouse")
    first = rows[0]
    assert first["status"] in ("promoted", "rejected") and first["reason"]
    assert first["base_version"] == first["deployed_version"] == SHIPPED
    assert first["source"] == "novacron.decision" and first["budget_pct"] == 1.0
    assert first["services"] == 2 and int(str(first["grad_steps"])) >= 50
    assert first["candidate_violation_pct"] is not None and first["candidate_cost"] is not None
    assert first["deployed_violation_pct"] is not None and first["deployed_cost"] is not None
    if first["status"] == "rejected":
        assert first["candidate"] == f"{SHIPPED}+{first['grad_steps']}"
    else:
        assert first["candidate"] == "v0001"
    audited = ingest.scalar(
        "SELECT count() FROM novacron.audit_log WHERE kind = 'ModelPromotion'")
    assert audited >= 1
