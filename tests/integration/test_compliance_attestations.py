"""Attestations and risk acceptances live on the compacted topic: they survive restarts,
change the report and the agent's results, and stop counting when they expire."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from agents.control_api import hash_token
from schemas import ComplianceResult, ConfigChange
from schemas.attestations import ATTESTATION_TOPIC, ComplianceAttestation
from schemas.codec import Codec
from streams.attestations import AttestationLog
from streams.cli.compliance import app
from streams.publish import publish
from streams.reader import read_to_end
from streams.settings import KafkaConfig, Settings
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.kafka
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "compliance"
runner = CliRunner()


def _env(monkeypatch: pytest.MonkeyPatch, kafka: KafkaConfig) -> None:
    monkeypatch.setenv("NOVACRON_KAFKA__BOOTSTRAP", kafka.bootstrap)
    monkeypatch.setenv("NOVACRON_KAFKA__TOPIC_PREFIX", kafka.topic_prefix)


def _report_rows(*extra: str) -> dict[tuple[str, str], dict[str, object]]:
    result = runner.invoke(app, ["report", str(FIXTURES / "s3_provider_v4.json"), "-s", "cis",
                                 "--format", "json", *extra])
    assert result.exit_code == 0, result.output
    return {(r["catalogue"], r["requirement"]): r for r in json.loads(result.output)[
        "requirements"]}


def test_an_attestation_from_the_cli_changes_the_report_until_it_expires(
    kafka_cfg: KafkaConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    _env(monkeypatch, kafka_cfg)
    assert _report_rows()[("aws-1.5.0", "1.5")]["status"] == "fail"  # nothing attested yet
    attest = runner.invoke(app, ["attest", "aws-root-mfa", "--statement", "hardware key on root",
                                 "--evidence", "https://tickets.example.com/SEC-7", "--days",
                                 "30", "--by", "ana"])
    assert attest.exit_code == 0, attest.output
    # each CLI run is a new reader of the compacted topic: the record survived the writer
    assert _report_rows()[("aws-1.5.0", "1.5")]["status"] == "pass"

    log = AttestationLog(kafka_cfg, kafka_cfg.topic(ATTESTATION_TOPIC))
    expired = ComplianceAttestation(
        kind="attestation", control_id="aws-root-mfa", by="ana", statement="hardware key",
        evidence_url="https://tickets.example.com/SEC-7",
        expires_at=datetime.now(UTC) - timedelta(minutes=1))
    asyncio.run(log.publish([expired]))  # the latest record for the key is the one in force
    assert _report_rows()[("aws-1.5.0", "1.5")]["status"] == "fail"
    listed = runner.invoke(app, ["attestations", "--format", "json"])
    assert [r["control_id"] for r in json.loads(listed.output)] == ["aws-root-mfa"]


def _results(kafka: KafkaConfig, control: str, resource: str) -> list[ComplianceResult]:
    codec = Codec()
    records = asyncio.run(read_to_end(kafka, kafka.topic("compliance")))
    found = [codec.decode(r.value, ComplianceResult) for r in records if r.value is not None]
    return [r for r in found if r.control_id == control and r.resource_id == resource]


def test_a_risk_acceptance_survives_a_worker_restart(
    worker_factory, kafka_cfg: KafkaConfig, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    _env(monkeypatch, kafka_cfg)
    token = "op-secret"
    tokens = {hash_token(token): {"user": "olu", "role": "operator"}}
    govern = worker_factory("govern", NOVACRON_API__TOKENS=orjson.dumps(tokens).decode())
    settings = Settings(kafka=kafka_cfg)
    vm = {"service": "checkout", "disk_encrypted": True, "public_ip": False, "monitoring": False,
          "tags": {"owner": "platform"}, "security_groups": []}
    publish([ConfigChange(resource_id="vm-1", resource_type="novacron_vm", config=vm)], settings)
    wait_until(lambda: [r for r in _results(kafka_cfg, "novacron-vm-monitoring", "vm-1")
                        if r.status == "open"], timeout=90, what="the open violation")

    # the acceptance goes through the control API, the topic, and back into the agent
    body = {"control_id": "novacron-vm-monitoring", "resource_id": "vm-1",
            "reason": "batch host, monitored by the scheduler", "days": 7}
    resp = httpx.post(f"{govern.url}/api/compliance/acceptances", json=body, timeout=10,
                      headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 201, resp.text
    wait_until(lambda: [r for r in _results(kafka_cfg, "novacron-vm-monitoring", "vm-1")
                        if r.status == "accepted"], timeout=60, what="the accepted status")

    govern.stop()
    restarted = worker_factory("govern")
    publish([ConfigChange(resource_id="vm-1", resource_type="novacron_vm", config=vm)], settings)
    accepted = wait_until(lambda: [r for r in _results(kafka_cfg, "novacron-vm-monitoring", "vm-1")
                                   if r.status == "accepted"][1:], timeout=90,
                          what="the acceptance after the restart")
    assert accepted and restarted.proc is not None and restarted.proc.poll() is None
