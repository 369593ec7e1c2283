"""The policy gate's operational state on the real broker: a pending approval (with its expiry),
an incident flag and the migrations-per-hour counter survive a SIGKILL of the govern worker; an
approval granted after the restart acts exactly once; the other request expires on time."""

from __future__ import annotations

import json
import zlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from schemas import Action, Approval, Decision, Insight, Outcome, PolicyVerdict, action_id_for
from tests.integration.conftest import wait_until
from tests.integration.records import cli, events, send_events, state
from tests.unit.effector_support import bare_repo

pytestmark = pytest.mark.kafka
# long enough to save, kill, restart and approve (~9 s from the request to the approval here,
# timed on a busy machine), short enough to watch it lapse
TTL = 35.0
ENV = {"NOVACRON_GATE__APPROVAL_TTL_SECONDS": str(TTL), "NOVACRON_HOST__SESSION_TIMEOUT_MS": "6000",
       "BROKER_SESSION_TIMEOUT": "6", "BROKER_HEARTBEAT_INTERVAL": "1"}


def _gate_state(cfg: Any) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    return {key: orjson.loads(zlib.decompress(blob))
            for key, (blob, _) in state(cfg, "govern", "gate").items() if blob}


def _verdicts(cfg: Any, *decisions: Decision) -> dict[str, PolicyVerdict]:
    wanted = {d.event_id for d in decisions}
    return {v.decision_id: v for v in events(cfg, PolicyVerdict) if v.decision_id in wanted}


def _approvals(cfg: Any, request: Decision) -> list[Approval]:
    return [a for a in events(cfg, Approval) if a.request_id == request.event_id]


def _finished(cfg: Any, action_id: str) -> list[Outcome]:
    return [o for o in events(cfg, Outcome) if o.action_id == action_id and o.scope == "action"
            and o.status != "started"]


def test_approvals_flags_and_counters_survive_sigkill(worker_factory, kafka_cfg,  # type: ignore[no-untyped-def]
                                                       tmp_path: Path) -> None:
    repo = bare_repo(tmp_path, {"services/api.yaml": {"service": "api", "replicas": 2}})
    worker_factory("execute", NOVACRON_EXECUTOR__DEFAULTS=json.dumps({"config_repo": str(repo)}))
    govern = worker_factory("govern", **ENV)

    send_events(kafka_cfg, Insight(resource_id="vm-hot", kind="anomaly", metric="cpu_usage",
                                   score=0.97))
    wait_until(lambda: httpx.get(f"{govern.url}/gate", params={"resource": "vm-hot"}, timeout=5
                                 ).json()["in_incident"], timeout=30, what="the incident flag")
    migrations = [Decision(resource_id="vm-dev", decision_type="migrate_vm", confidence=0.9,
                           params={"target_region": "eu-west-1"}) for _ in range(3)]
    keep = Decision(resource_id="api", decision_type="scale_up", confidence=0.9,
                    params={"delta": 1}, requires_approval=True)
    lapse = Decision(resource_id="vm-lapse", decision_type="scale_up", confidence=0.9,
                     params={"delta": 1}, requires_approval=True)
    send_events(kafka_cfg, *migrations, keep, lapse)
    before = wait_until(lambda: len(v := _verdicts(kafka_cfg, *migrations, keep, lapse)) == 5
                        and v, timeout=60, what="a verdict per decision")
    assert [before[d.event_id].outcome for d in migrations] == ["allow"] * 3
    assert before[keep.event_id].outcome == before[lapse.event_id].outcome == "needs_approval"
    [raised] = wait_until(lambda: _approvals(kafka_cfg, lapse), what="the pending request")
    assert raised.status == "pending" and raised.expires_at is not None

    saved = wait_until(lambda: (s := _gate_state(kafka_cfg)).keys() >= {
        "vm-hot", "vm-dev", "api", "vm-lapse"} and len(s["vm-dev"].get("migrations", ())) == 3
        and s, what="the gate's state checkpointed")
    assert "incident_until" in saved["vm-hot"]
    assert [p["approval"]["request_id"] for p in saved["api"]["pending"]] == [keep.event_id]
    govern.kill()
    govern.start()

    # the flag and the counter still deny after the restart
    fourth = Decision(resource_id="vm-dev", decision_type="migrate_vm", confidence=0.9,
                      params={"target_region": "eu-west-1"})
    shrink = Decision(resource_id="vm-hot", decision_type="scale_down", confidence=0.9)
    send_events(kafka_cfg, fourth, shrink)
    after = wait_until(lambda: len(v := _verdicts(kafka_cfg, fourth, shrink)) == 2 and v,
                       timeout=90, what="verdicts from the restarted gate")
    assert after[fourth.event_id].reasons == [
        "novacron.safety.actions: 3 migrations of vm-dev in the last hour (limit 3)"]
    assert after[shrink.event_id].reasons == [
        "novacron.safety.actions: no scale_down of vm-hot during an open incident"]

    # the approval granted after the restart acts exactly once: one action, one outcome
    done = cli(kafka_cfg, "approve", keep.event_id, "--by", "alice", "--reason", "ok")
    assert done.returncode == 0, done.stdout + done.stderr
    aid = action_id_for(keep.event_id)
    [outcome] = wait_until(lambda: _finished(kafka_cfg, aid), timeout=90, what="the outcome")
    assert outcome.status == "succeeded", outcome

    # the other request expires at the time it was given before the kill, not later
    expired = wait_until(lambda: [a for a in _approvals(kafka_cfg, lapse)
                                  if a.status == "expired"], timeout=TTL + 30, what="the expiry")
    assert len(expired) == 1
    assert raised.expires_at <= expired[0].event_time <= raised.expires_at + timedelta(seconds=10)
    assert [a.status for a in _approvals(kafka_cfg, keep)] == ["pending", "approved"]
    assert [a.decision_id for a in events(kafka_cfg, Action) if a.decision_id in {
        keep.event_id, lapse.event_id, fourth.event_id, shrink.event_id}] == [keep.event_id]
    assert len(_finished(kafka_cfg, aid)) == 1
