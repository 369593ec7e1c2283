"""A simulated load anomaly and cost spike: the optimizer's insights reach ClickHouse."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from agents.simulator.world import SimConfig, World
from streams.settings import Settings
from streams.simulate import SimulatorHost, SimulatorStats, replay_start
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.kafka
TICKS, INJECT_AT = 240, 120
# right-sized services (4 VMs at a ~45 % busy hour), so the only right-sizing up and the only
# anomaly of svc-1 after the injection are the ones the injection causes
WORLD = SimConfig(seed=7, services=3, initial_vms=4, max_vms=4, peak_demand_fraction=0.62,
                  trace_offset=840, drift_probability=0, violation_probability=0,
                  config_every_ticks=0)


def _run_world(settings: Settings) -> World:
    # the run ends by now, so every event time is inside the edge's event-time window; starting
    # at midnight keeps the seasonal phase of the forecasters the same on every run
    start = replay_start(TICKS, WORLD.interval_seconds).replace(hour=0, minute=0)
    world = World(WORLD.model_copy(update={"start_time": start}))

    def inject(stats: SimulatorStats) -> None:
        if stats.ticks == INJECT_AT:  # from the next tick: 3x demand and a 5x cost rate
            world.inject_anomaly("svc-1", "load", 3.0, 60)
            world.inject_anomaly("svc-1", "cost", 5.0, 60)

    asyncio.run(SimulatorHost(world, settings, tick_seconds=0.01, on_tick=inject).run(TICKS))
    return world


def test_injected_anomaly_and_cost_spike_reach_clickhouse(worker_factory, kafka_cfg) -> None:  # type: ignore[no-untyped-def]
    ingest = worker_factory("ingest")
    learn = worker_factory("learn", NOVACRON_OPTIMIZER__RECOMMEND_EVERY="20",
                           NOVACRON_OPTIMIZER_CHECKPOINT__GAUGES_SECONDS="0.5")
    _run_world(Settings(kafka=kafka_cfg))
    wait_until(lambda: ingest.scalar("SELECT count() FROM novacron.metric_samples") == 3 * TICKS,
               timeout=60, what="every simulated sample stored")
    injected = ingest.sql(
        "SELECT toUnixTimestamp64Milli(min(event_time)) AS t FROM novacron.metric_samples "
        "WHERE resource_id = 'svc-1' AND cost_per_hour > 1.0")[0]["t"]

    # insights joined to the metric sample that caused them: same chain, after the injection
    query = (
        "SELECT i.kind AS kind, i.resource_id AS rid, i.details AS details, "
        "i.correlation_id = m.correlation_id AS same_chain, "
        "toUnixTimestamp64Milli(m.event_time) AS caused_at "
        "FROM novacron.insights AS i INNER JOIN novacron.metric_samples AS m "
        "ON i.causation_id = m.event_id WHERE i.kind != 'forecast'")
    rows = wait_until(lambda: _found(ingest.sql(query), injected), timeout=60,
                      what="an anomaly and a right-sizing insight of svc-1 after the injection")
    assert all(r["same_chain"] for r in rows)
    anomaly = next(r for r in rows if r["kind"] == "anomaly" and r["rid"] == "svc-1"
                   and r["caused_at"] >= injected)
    assert json.loads(anomaly["details"])["metrics"]["cost_per_hour"] > 1.0  # 5x the 0.4/h of 4 VMs
    ups = [(r["rid"], r["caused_at"] >= injected) for r in rows
           if _recommendation(r) == "rightsize_up"]
    assert ups and set(ups) == {("svc-1", True)}  # only the injected service, only afterwards

    mae = 'novacron_optimizer_mae{metric="cpu_usage",resource="svc-1"}'
    exposition = wait_until(lambda: _exposition(learn.url, mae), timeout=30, what=mae)
    ups_total = 'novacron_optimizer_recommendations_total{auto="false",kind="rightsize_up"}'
    assert _value(exposition, ups_total) >= 1
    assert _value(exposition, "novacron_optimizer_anomalies_total") >= 1


def _recommendation(row: dict[str, object]) -> str | None:
    if row["kind"] != "recommendation":
        return None
    return json.loads(str(row["details"])).get("recommendation")  # type: ignore[no-any-return]


def _found(rows: list[dict[str, object]], injected: int) -> list[dict[str, object]] | None:
    after = [r for r in rows if r["rid"] == "svc-1"
             and int(r["caused_at"]) >= injected]  # type: ignore[call-overload]
    kinds = {r["kind"] for r in after} | {_recommendation(r) for r in after}
    return rows if {"anomaly", "rightsize_up"} <= kinds else None


def _exposition(url: str, wanted: str) -> str | None:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return text if wanted in text else None


def _value(exposition: str, name: str) -> float:
    lines = [line for line in exposition.splitlines() if line.startswith(name + " ")]
    assert len(lines) <= 1
    return float(lines[0].split()[1]) if lines else 0.0
