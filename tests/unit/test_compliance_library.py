"""The control library: every control's own pass/fail fixtures, coverage and loader checks."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from policies.compliance import (
    STANDARDS,
    Control,
    RegoEvaluator,
    load_library,
    normalise_standard,
)
from policies.compliance.evaluator import wrapper_module
from policies.compliance.library import CONTROLS_DIR
from schemas.errors import RejectedError

LIBRARY = load_library()
EVALUATOR = RegoEvaluator(LIBRARY)  # one bundle for the whole module, as in production


def _cases() -> list[tuple[str, str]]:
    return [(c.id, kind) for c in LIBRARY.controls.values() if c.kind == "automated"
            for kind in ("pass", "fail")]


@pytest.mark.parametrize(("control_id", "kind"), _cases())
def test_control_example(control_id: str, kind: str) -> None:
    control = LIBRARY.get(control_id)
    assert control.examples is not None, f"{control_id} has no examples"
    rtype = control.examples.resource_type or control.resource_types[0]
    assert rtype in control.resource_types
    config = control.examples.passing if kind == "pass" else control.examples.failing
    verdicts = EVALUATOR.evaluate(rtype, config)
    assert (control_id in verdicts.failing) is (kind == "fail"), sorted(verdicts.failing)
    assert control_id not in verdicts.unknown


def test_coverage_of_the_required_standards() -> None:
    counts = Counter(s for c in LIBRARY.controls.values() for s in STANDARDS if c.maps_to(s))
    assert counts["cis"] >= 50
    assert counts["pci-dss"] >= 30
    assert counts["hipaa"] >= 25
    assert all(counts[s] > 0 for s in STANDARDS)


def test_library_covers_the_named_resource_types() -> None:
    required = {
        "aws_s3_bucket", "aws_s3_bucket_public_access_block", "aws_security_group",
        "aws_db_instance", "aws_ebs_volume", "aws_iam_policy", "aws_cloudtrail", "aws_kms_key",
        "aws_instance", "aws_lb_listener", "google_storage_bucket", "google_compute_firewall",
        "google_sql_database_instance", "azurerm_storage_account",
        "azurerm_network_security_group", "kubernetes_deployment", "kubernetes_pod",
        "novacron_vm", "novacron_network", "novacron_storage", "novacron_policy",
    }
    assert required <= set(LIBRARY.types())


def test_every_control_has_metadata_and_a_fix() -> None:
    for c in LIBRARY.controls.values():
        assert c.frameworks, c.id
        assert c.rule.startswith("novacron.compliance."), c.id
        assert c.kind == "manual" or c.reads, f"{c.id} declares no attributes it reads"
        assert all(r.count(":") >= 1 for r in c.refs()), c.id


def test_refs_are_standard_prefixed() -> None:
    c = LIBRARY.get("aws-ebs-encrypted")
    assert "cis:aws-1.5.0/2.2.1" in c.refs() and "cis:aws-3.0.0/2.2.1" in c.refs()
    assert c.refs("pci-dss") == ["pci-dss:3.5.1"]
    assert c.maps_to("hipaa") and not LIBRARY.get("k8s-image-pinned").maps_to("hipaa")


@pytest.mark.parametrize(
    ("name", "key"),
    [("PCI", "pci-dss"), ("pci_dss", "pci-dss"), ("SOC-2", "soc2"), ("ISO", "iso27001")],
)
def test_standard_aliases(name: str, key: str) -> None:
    assert normalise_standard(name) == key


def test_unknown_standard_is_rejected() -> None:
    with pytest.raises(RejectedError, match="unknown standard"):
        normalise_standard("fedramp")


def test_bundle_is_compiled_once_for_many_resources(monkeypatch: pytest.MonkeyPatch) -> None:
    evaluator = RegoEvaluator(LIBRARY)
    builds: list[int] = []
    original = evaluator.compile

    def counting() -> None:
        builds.append(1)
        original()

    monkeypatch.setattr(evaluator, "compile", counting)
    for i in range(20):
        evaluator.evaluate("aws_ebs_volume", {"encrypted": i % 2 == 0})
    assert builds == [1]
    assert evaluator.evaluations == 20


def test_one_query_returns_every_failing_control_of_the_type() -> None:
    bad_trail = {"name": "t", "is_multi_region_trail": False, "enable_log_file_validation": False}
    failing = EVALUATOR.evaluate("aws_cloudtrail", bad_trail).failing
    assert {"aws-cloudtrail-multi-region", "aws-cloudtrail-log-validation",
            "aws-cloudtrail-kms", "aws-cloudtrail-cloudwatch"} <= failing
    assert failing <= {c.id for c in LIBRARY.for_type("aws_cloudtrail")}


def test_types_without_controls_are_not_queried() -> None:
    evaluator = RegoEvaluator(LIBRARY)
    assert evaluator.evaluate("random_id", {"byte_length": 8}).failing == frozenset()
    assert evaluator.evaluations == 0


def test_wrapper_dispatches_each_type_to_its_packages() -> None:
    text = wrapper_module(LIBRARY)
    assert "t_aws_ebs_volume_fail := data.novacron.compliance.aws_compute.deny\n" in text
    assert "t_kubernetes_pod_fail := data.novacron.compliance.kubernetes.deny\n" in text


def test_simulator_configs_pass_and_its_violations_fail() -> None:
    from agents.simulator.configs import VIOLATIONS, network_baseline, vm_baseline

    baselines = {"novacron_vm": vm_baseline("checkout", "vm-1", 1),
                 "novacron_network": network_baseline("checkout")}
    for rtype, config in baselines.items():
        assert EVALUATOR.evaluate(rtype, config).failing == frozenset(), rtype
    for kind, (rtype, key, value) in VIOLATIONS.items():
        assert EVALUATOR.evaluate(rtype, {**baselines[rtype], key: value}).failing, kind


def _write(tmp: Path, yaml_text: str, rego_text: str) -> tuple[Path, Path]:
    (tmp / "controls").mkdir()
    (tmp / "rego").mkdir()
    (tmp / "controls" / "demo.yaml").write_text(yaml_text)
    (tmp / "rego" / "demo.rego").write_text(rego_text)
    return tmp / "controls", tmp / "rego"


CONTROL_YAML = """controls:
  - id: demo-encrypted
    title: Demo volumes are encrypted
    severity: HIGH
    resource_types: [demo_volume]
    reads: [encrypted]
    remediation: Turn encryption on.
    frameworks: {pci-dss: ["3.5.1"]}
"""
REGO = """package novacron.compliance.demo
import rego.v1
deny contains "demo-encrypted" if {
\tinput.type == "demo_volume"
\tnot input.config.encrypted == true
}
"""


def test_a_custom_library_loads_and_evaluates(tmp_path: Path) -> None:
    lib = load_library(*_write(tmp_path, CONTROL_YAML, REGO))
    ev = RegoEvaluator(lib)
    assert ev.evaluate("demo_volume", {"encrypted": False}).failing == {"demo-encrypted"}
    assert ev.evaluate("demo_volume", {"encrypted": True}).failing == frozenset()


@pytest.mark.parametrize(
    ("yaml_text", "rego_text", "message"),
    [
        (CONTROL_YAML, REGO.replace('"demo-encrypted"', '"other-id"'), "no `deny contains` rule"),
        (CONTROL_YAML.replace("pci-dss", "fedramp"), REGO, "unknown standard"),
        (CONTROL_YAML, REGO.replace("package novacron.compliance.demo", "package x"), "package"),
        (CONTROL_YAML + CONTROL_YAML.split("controls:\n")[1], REGO, "duplicate control id"),
        ("controls: 3\n", REGO, "`controls:` list"),
        (CONTROL_YAML.replace("severity: HIGH", "severity: SEVERE"), REGO, "demo-encrypted"),
    ],
)
def test_broken_libraries_are_rejected(
    tmp_path: Path, yaml_text: str, rego_text: str, message: str
) -> None:
    with pytest.raises(RejectedError, match=message):
        load_library(*_write(tmp_path, yaml_text, rego_text))


def test_a_rule_without_control_is_rejected(tmp_path: Path) -> None:
    extra = REGO + '\ndeny contains "orphan" if input.type == "demo_volume"\n'
    with pytest.raises(RejectedError, match="rules without a control"):
        load_library(*_write(tmp_path, CONTROL_YAML, extra))


def test_a_library_that_does_not_compile_is_rejected(tmp_path: Path) -> None:
    lib = load_library(*_write(tmp_path, CONTROL_YAML, REGO + "\nbroken := {\n"))
    with pytest.raises(RejectedError, match="does not compile"):
        RegoEvaluator(lib).evaluate("demo_volume", {})


def test_controls_are_strict_models() -> None:
    with pytest.raises(ValueError, match="extra"):
        Control.model_validate({
            "id": "x-y-z", "title": "A title", "severity": "LOW", "resource_types": ["t"],
            "remediation": "Fix it.", "surprise": 1,
        })
    assert sorted(p.stem for p in CONTROLS_DIR.glob("*.yaml")) == sorted(
        {c.rule.rsplit(".", 1)[1] for c in LIBRARY.controls.values()}
    )


def test_bare_comparisons_in_control_packages_are_refused(tmp_path: Path) -> None:
    rego = REGO.replace("not input.config.encrypted == true", "input.config.size < 10")
    with pytest.raises(RejectedError, match=r"lib\.below/at_most/above/at_least"):
        load_library(*_write(tmp_path, CONTROL_YAML, rego))


def test_functions_of_one_name_and_two_arities_are_refused(tmp_path: Path) -> None:
    rego = REGO + "\nexposes(a) if a == 1\n"
    controls, rego_dir = _write(tmp_path, CONTROL_YAML, rego)
    (rego_dir / "other.rego").write_text("package x\nimport rego.v1\nexposes(a, b) if a == b\n")
    with pytest.raises(RejectedError, match="exposes takes"):
        load_library(controls, rego_dir)
