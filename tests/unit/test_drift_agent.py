"""DriftDetector: findings, remediation proposals, approval gating, dedupe and lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from agents.drift import DriftConfig, DriftDetector, accepted_baseline, desired_state
from schemas import ConfigChange, Decision, DriftFinding

T0 = datetime(2026, 3, 1, tzinfo=UTC)
VM = {f"f{i:02d}": i for i in range(20)} | {"id": "vm-1", "updated_at": "t0"}


def change(config: dict, op: str = "update", source: str = "console") -> ConfigChange:
    return ConfigChange(
        resource_id="vm-1", resource_type="novacron_vm", config=config, op=op, change_source=source
    )


def detector(**cfg: object) -> DriftDetector:
    det = DriftDetector(DriftConfig(**cfg), clock=lambda: T0)  # type: ignore[arg-type]
    det.on_baseline(desired_state("vm-1", "novacron_vm", VM, origin="git", revision="abc123"))
    return det


def drifted(n: int) -> dict:
    return VM | {f"f{i:02d}": -1 for i in range(n)}


def test_no_baseline_no_finding() -> None:
    det = DriftDetector()
    assert det.on_config(change(drifted(5))) == []


def test_clean_and_computed_only_changes_emit_nothing() -> None:
    det = detector()
    assert det.on_config(change(dict(VM))) == []
    assert det.on_config(change(VM | {"id": "vm-2", "updated_at": "t9"})) == []


def test_drift_emits_finding_and_proposal_in_one_chain() -> None:
    det = detector()
    cc = change(drifted(3))
    finding, decision = det.on_config(cc)
    assert isinstance(finding, DriftFinding) and isinstance(decision, Decision)
    assert finding.severity == "MEDIUM" and finding.drift_ratio == pytest.approx(3 / 20)
    assert finding.changed_fields == ["/f00", "/f01", "/f02"]
    assert finding.changes[0] == {"path": "/f00", "op": "changed", "old": 0, "new": -1}
    assert finding.baseline_revision == "abc123"
    assert (
        finding.baseline_hash
        and finding.current_hash
        and finding.baseline_hash != finding.current_hash
    )
    assert (finding.correlation_id, finding.causation_id) == (cc.correlation_id, cc.event_id)
    assert (decision.correlation_id, decision.causation_id) == (cc.correlation_id, finding.event_id)
    assert decision.origin == "drift" and decision.decision_type == "revert_drift"
    assert decision.severity == "MEDIUM" and decision.requires_approval  # not configured to auto
    assert decision.params["baseline_config"] == VM
    assert decision.params["revert"][0] == {"op": "replace", "path": "/f00", "value": 0}
    assert decision.params["finding_id"] == finding.event_id


@pytest.mark.parametrize(("n", "severity"), [(11, "CRITICAL"), (6, "HIGH")])
def test_critical_and_high_always_need_approval(n: int, severity: str) -> None:
    det = detector(auto_remediate={"MEDIUM", "LOW", "INFO"})
    finding, decision = det.on_config(change(drifted(n)))
    assert finding.severity == severity  # type: ignore[attr-defined]
    assert decision.requires_approval and not decision.params["auto_remediate"]  # type: ignore[attr-defined]


def test_lower_severities_auto_remediate_only_when_configured() -> None:
    _, gated = detector().on_config(change(drifted(2)))
    _, auto = detector(auto_remediate={"LOW"}).on_config(change(drifted(2)))
    assert gated.requires_approval  # type: ignore[attr-defined]
    assert not auto.requires_approval and auto.params["auto_remediate"]  # type: ignore[attr-defined]


def test_auto_remediating_critical_is_refused() -> None:
    with pytest.raises(ValidationError):
        DriftConfig(auto_remediate={"HIGH"})  # type: ignore[arg-type]


def test_changes_from_accept_sources_are_proposed_for_acceptance() -> None:
    det = detector(accept_sources={"terraform"})
    cc = change(drifted(1), source="terraform")
    _, decision = det.on_config(cc)
    assert decision.decision_type == "accept_drift"  # type: ignore[attr-defined]
    assert decision.params["config"] == cc.config  # type: ignore[attr-defined]


def test_deleting_a_resource_with_a_baseline_is_critical_drift() -> None:
    finding, decision = detector().on_config(change({}, op="delete"))
    assert finding.severity == "CRITICAL" and finding.drift_ratio == 1.0  # type: ignore[attr-defined]
    assert finding.changed_fields == [""]  # type: ignore[attr-defined]
    assert decision.params["recreate"] is True  # type: ignore[attr-defined]


def test_persisting_drift_is_reported_once_and_closed_when_reverted() -> None:
    det = detector()
    assert len(det.on_config(change(drifted(2)))) == 2
    assert det.on_config(change(drifted(2) | {"updated_at": "t5"})) == []  # same drift
    assert len(det.on_config(change(drifted(3)))) == 2  # drift changed: new finding
    (closing,) = det.on_config(change(VM))
    assert isinstance(closing, DriftFinding) and closing.status == "remediated"
    assert det.on_config(change(VM)) == []


def test_dedupe_can_be_disabled() -> None:
    det = detector(dedupe=False)
    assert len(det.on_config(change(drifted(2)))) == 2
    assert len(det.on_config(change(drifted(2)))) == 2


def test_accepting_a_drift_makes_it_the_baseline() -> None:
    det = detector()
    cc = change(drifted(2))
    det.on_config(cc)
    new_baseline = accepted_baseline(cc, author="ana")
    assert new_baseline.origin == "accepted-drift" and new_baseline.config == cc.config
    assert new_baseline.causation_id == cc.event_id
    det.on_baseline(new_baseline)
    (closing,) = det.on_config(change(drifted(2)))
    assert closing.status == "accepted"  # type: ignore[attr-defined]


def test_withdrawn_baseline_stops_detection() -> None:
    det = detector()
    det.on_baseline(desired_state("vm-1", "novacron_vm", {}, deleted=True))
    assert det.on_config(change(drifted(10))) == []


def test_finding_changes_are_capped_but_fields_complete() -> None:
    det = detector(max_changes=2)
    finding, _ = det.on_config(change(drifted(5)))
    assert len(finding.changes) == 2 and len(finding.changed_fields) == 5  # type: ignore[attr-defined]


def test_detector_does_not_mutate_inputs() -> None:
    det = detector()
    cfg = drifted(3)
    snapshot = {k: v for k, v in cfg.items()}
    det.on_config(change(cfg))
    assert cfg == snapshot and VM["f00"] == 0
