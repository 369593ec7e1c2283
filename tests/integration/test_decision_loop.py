"""The closed loop on the real broker: simulator → metrics → DQN decision → policy gate → action →
simulator → outcome → reward, with every step in ClickHouse on one correlation chain."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from agents.simulator.world import SimConfig, World
from streams.settings import Settings
from streams.simulate import SimulatorHost, replay_start
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.kafka
FAST_FAILOVER = {"BROKER_SESSION_TIMEOUT": "6", "BROKER_HEARTBEAT_INTERVAL": "1"}


def test_decisions_become_actions_outcomes_and_rewards(worker_factory, kafka_cfg) -> None:  # type: ignore[no-untyped-def]
    ingest = worker_factory("ingest")
    learn = worker_factory("learn", **FAST_FAILOVER)
    worker_factory("govern", **FAST_FAILOVER)
    start = replay_start(240, 60.0)  # the run ends now: inside the edge's event-time window
    # few VMs for the demand: the DQN has to act, and the world applies what the gate allows
    world = World(
        SimConfig(
            seed=11,
            services=2,
            initial_vms=2,
            start_time=start,
            drift_probability=0.0,
            violation_probability=0.0,
        )
    )
    host = SimulatorHost(world, Settings(kafka=kafka_cfg), tick_seconds=0.05)
    asyncio.run(host.run(240))

    def applied_chains() -> list[dict[str, object]]:
        return ingest.sql(
            "SELECT d.correlation_id AS chain, d.decision_type AS action, a.action_id AS action_id "
            "FROM novacron.decisions AS d FINAL "
            "INNER JOIN novacron.actions AS a FINAL ON a.causation_id = d.event_id "
            "INNER JOIN novacron.outcomes AS o FINAL ON o.action_id = a.action_id "
            "WHERE d.origin = 'dqn' AND o.source = 'novacron.simulator' "
            "AND o.correlation_id = d.correlation_id AND a.correlation_id = d.correlation_id"
        )

    chains = wait_until(applied_chains, timeout=90, what="decision → action → outcome chains")
    assert {c["action"] for c in chains} <= {
        "scale_up",
        "scale_down",
        "migrate_vm",
        "rebalance_load",
        "adjust_policy",
        "enable_feature",
        "disable_feature",
    }
    chain = str(chains[0]["chain"])
    # the chain starts at a metric sample and every hop carries the same correlation id
    kinds = ingest.sql(
        f"SELECT count() AS n FROM novacron.metric_samples WHERE event_id = '{chain}'"
    )
    assert int(kinds[0]["n"]) == 1
    verdicts = ingest.scalar(
        "SELECT count() FROM novacron.policy_verdicts FINAL "
        f"WHERE correlation_id = '{chain}' AND outcome = 'allow'"
    )
    assert verdicts >= 1
    assert host.stats.actions_applied >= 1

    def rewards() -> list[str]:
        text = httpx.get(f"{learn.url}/metrics", timeout=10).text
        return re.findall(r'novacron_decision_last_reward\{service="svc-\d"\} (\S+)', text)

    assert wait_until(rewards, timeout=30, what="a reward recorded from an outcome")
