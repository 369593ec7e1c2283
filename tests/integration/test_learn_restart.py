"""The learn role's durable state on the real broker: DQN cooldowns survive SIGKILL, and the
deployed model version is switched in a running worker and kept by a restarted one."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from schemas import Decision, MetricSample
from tests.integration.conftest import wait_until
from tests.integration.records import cli, events, send_events, state

pytestmark = pytest.mark.kafka
T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
ENV = {
    "NOVACRON_DECISION__SAFETY__COOLDOWN_SECONDS": "3600",  # a scale_up blocks it for an hour
    "NOVACRON_DECISION__SAFETY__MAX_ACTIONS_PER_WINDOW": "99",  # only cooldowns limit here
    "NOVACRON_HOST__SESSION_TIMEOUT_MS": "6000",  # the killed member's partitions move sooner
    # a decision's service is saved with its batch; samples without one by count or age: 2 s
    # here (30 s by default), so the waits below for the last sample's save stay short
    "NOVACRON_HOST__CHECKPOINTS__DECISION__MAX_AGE_SECONDS": "2",
}


def hot(i: int, service: str = "svc-1") -> MetricSample:
    """An overloaded service: after 180 s of this the safety guard forces scale_up."""
    return MetricSample(resource_id=service, resource_type="service", event_id=f"{service}-{i}",
                        event_time=T0 + timedelta(minutes=i), cpu_usage=96.0,
                        network_latency_ms=450.0, error_rate=0.05, request_rate=900.0,
                        active_vms=3, memory_usage=60.0)


def _covered(cfg, service: str, partition: int, offset: int) -> bool:  # type: ignore[no-untyped-def]
    """The decision agent's saved state of a service holds the record at this offset."""
    saved = state(cfg, "learn", "decision").get(service)
    return saved is not None and saved[1].positions.get(
        f"{cfg.topic('metrics')}/{partition}", -1) >= offset


def _decisions(cfg, samples: list[MetricSample]) -> list[Decision]:  # type: ignore[no-untyped-def]
    wanted = {s.event_id for s in samples}
    return [d for d in events(cfg, Decision) if d.causation_id in wanted]


def test_a_cooldown_in_force_before_sigkill_still_blocks_after_it(worker_factory, kafka_cfg
                                                                   ) -> None:  # type: ignore[no-untyped-def]
    learn = worker_factory("learn", **ENV)
    before = [hot(i) for i in range(5)]
    sent = send_events(kafka_cfg, *before)
    wait_until(lambda: any(d.decision_type == "scale_up" for d in _decisions(kafka_cfg, before)),
               what="a forced scale_up before the kill")
    wait_until(lambda: _covered(kafka_cfg, "svc-1", *sent[-1]), what="the cooldown checkpointed")
    learn.kill()  # SIGKILL: no revoke, no shutdown checkpoint
    learn.start()
    # five more minutes of overload: a worker that lost the history would force scale_up again
    # once the overload is 180 s old (its overload timer restarts); the restored one may not,
    # because scale_up is in its one-hour cooldown
    after = [hot(i) for i in range(5, 10)]
    sent = send_events(kafka_cfg, *after)
    wait_until(lambda: _covered(kafka_cfg, "svc-1", *sent[-1]), what="the restarted worker")
    assert [d.decision_type for d in _decisions(kafka_cfg, after)].count("scale_up") == 0
    ups = [d for d in _decisions(kafka_cfg, before) if d.decision_type == "scale_up"]
    assert len(ups) == 1  # and nothing before the kill was decided twice


def _model(url: str) -> set[str]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return set(re.findall(r'^novacron_decision_model_info\{version="([^"]+)"\} 1\.0', text, re.M))


def test_rollback_reaches_a_running_worker_and_a_restart_keeps_it(worker_factory, kafka_cfg,
                                                                   tmp_path) -> None:  # type: ignore[no-untyped-def]
    learn = worker_factory("learn", **ENV)
    wait_until(lambda: _model(learn.url) == {"shipped-v0006"}, what="the shipped model")
    rolled = cli(kafka_cfg, "model", "rollback", "v0002", "--model-dir", str(tmp_path / "none"),
                 "--by", "oncall", "--reason", "v0006 costs too much")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    # the worker polls the model-versions topic every tick (1 s): 10 s is the promise to users
    wait_until(lambda: _model(learn.url) == {"shipped-v0002"}, timeout=10,
               what="the running worker to switch to v0002")
    first = [hot(i, "svc-2") for i in range(3)]
    send_events(kafka_cfg, *first)
    decided = wait_until(lambda: _decisions(kafka_cfg, first), what="decisions after the switch")
    assert {d.model_version for d in decided} == {"shipped-v0002"}
    learn.kill()
    learn.start()
    later = [hot(i, "svc-3") for i in range(3)]
    send_events(kafka_cfg, *later)
    decided = wait_until(lambda: _decisions(kafka_cfg, later), what="decisions after restart")
    # the deployed version is loaded before the restarted worker consumes anything
    assert {d.model_version for d in decided} == {"shipped-v0002"}
