"""The govern role's durable state on the real broker: an open drift finding and an open
compliance violation are neither lost nor duplicated when the worker is SIGKILLed."""

from __future__ import annotations

from typing import Any

import pytest

from schemas import ComplianceResult, ConfigChange, DesiredState, DriftFinding
from tests.integration.conftest import wait_until
from tests.integration.records import events, send_events, state

pytestmark = pytest.mark.kafka
ENV = {"NOVACRON_HOST__SESSION_TIMEOUT_MS": "6000"}
SG: dict[str, Any] = {"name": "web", "vpc_id": "vpc-1",
                      "ingress": [{"from_port": 443, "to_port": 443, "protocol": "tcp",
                                   "cidr_blocks": ["10.0.0.0/8"]}]}
SG_OPEN = {**SG, "ingress": [*SG["ingress"], {"from_port": 22, "to_port": 22, "protocol": "tcp",
                                              "cidr_blocks": ["0.0.0.0/0"]}]}
VM_OK: dict[str, Any] = {"service": "checkout", "disk_encrypted": True, "public_ip": False,
                         "monitoring": True, "tags": {"owner": "platform"}, "security_groups": []}
VM_BAD = {**VM_OK, "public_ip": True, "disk_encrypted": False}


def sg(config: dict[str, Any]) -> ConfigChange:
    return ConfigChange(resource_id="aws_security_group.web", resource_type="aws_security_group",
                        provider="aws", change_source="console", config=config)


def vm(config: dict[str, Any]) -> ConfigChange:
    return ConfigChange(resource_id="vm-7", resource_type="novacron_vm", provider="novacron",
                        change_source="api", config=config)


def _saved(cfg, agent: str, key: str, at: tuple[int, int]) -> bool:  # type: ignore[no-untyped-def]
    found = state(cfg, "govern", agent).get(key)
    return found is not None and found[1].positions.get(
        f"{cfg.topic('config')}/{at[0]}", -1) >= at[1]


def _findings(cfg, change: ConfigChange) -> list[DriftFinding]:  # type: ignore[no-untyped-def]
    return [f for f in events(cfg, DriftFinding) if f.causation_id == change.event_id]


def _results(cfg, change: ConfigChange) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {r.control_id: r.status for r in events(cfg, ComplianceResult)
            if r.causation_id == change.event_id}


def test_open_findings_and_violations_survive_sigkill(worker_factory, kafka_cfg) -> None:  # type: ignore[no-untyped-def]
    send_events(kafka_cfg, DesiredState(resource_id="aws_security_group.web",
                                        resource_type="aws_security_group", config=SG))
    govern = worker_factory("govern", **ENV)
    drifted, violating = sg(SG_OPEN), vm(VM_BAD)
    at = send_events(kafka_cfg, drifted, violating)
    assert [f.status for f in wait_until(lambda: _findings(kafka_cfg, drifted))] == ["open"]
    opened = wait_until(lambda: _results(kafka_cfg, violating), what="compliance results")
    violated = {c for c, status in opened.items() if status == "open"}
    assert {"novacron-vm-no-public-ip", "novacron-vm-disk-encrypted"} <= violated
    wait_until(lambda: _saved(kafka_cfg, "drift", "aws_security_group.web", at[0])
               and _saved(kafka_cfg, "compliance", "vm-7", at[1]), what="both checkpointed")
    govern.kill()
    govern.start()

    # the same drift again, then both resources fixed: a process that lost its state would
    # report the drift as new, and the fixed VM as merely passing
    again, fixed_sg, fixed_vm = sg(SG_OPEN), sg(SG), vm(VM_OK)
    at = send_events(kafka_cfg, again, fixed_sg, fixed_vm)
    wait_until(lambda: _saved(kafka_cfg, "drift", "aws_security_group.web", at[1])
               and _saved(kafka_cfg, "compliance", "vm-7", at[2]), what="the restarted worker")
    assert _findings(kafka_cfg, again) == []  # not duplicated: the open finding was restored
    closing = wait_until(lambda: _findings(kafka_cfg, fixed_sg), what="the closing finding")
    assert [f.status for f in closing] == ["remediated"]  # not lost: it is closed
    resolved = _results(kafka_cfg, fixed_vm)
    assert {c: resolved[c] for c in violated} == {c: "remediated" for c in violated}
    open_findings = [f for f in events(kafka_cfg, DriftFinding) if f.status == "open"]
    assert len(open_findings) == 1  # one open finding in the whole history of the drift
