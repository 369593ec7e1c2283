"""Batched evaluation gives each input the verdict it gets alone, on both in-process engines;
one bad input never decides for its neighbours; the cache and the gate's sequencing still hold."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agents.gate import GateConfig, PolicyGate
from policies._wasm_builtins import sprintf
from policies.compliance import RegoEvaluator, Scanner, load_library
from policies.compliance.resources import Resource
from policies.core import EngineConfig
from policies.engine import RUNTIME_ERROR, RegoEngine, StaticSource
from policies.result import EvalResult
from policies.source import content_hash, load_directory
from policies.wasm import WasmEngine, find_opa
from runbooks.loader import Library
from runbooks.resolve import Resolver
from schemas import Decision, PolicyVersion

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = load_directory(ROOT / "policies" / "rego")
NOW = datetime(2026, 11, 2, tzinfo=UTC)


@pytest.fixture(params=["regopy", "wasm"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "wasm" and find_opa() is None:
        pytest.skip("no OPA binary to build wasm modules: `GOBIN=~/.cache/novacron/bin go install "
                    "github.com/open-policy-agent/opa@v1.22.4` (or set NOVACRON_OPA)")
    return str(request.param)


def make(backend: str, policies: list[PolicyVersion], cache: int = 0) -> RegoEngine | WasmEngine:
    kind = WasmEngine if backend == "wasm" else RegoEngine
    return kind(StaticSource(policies), EngineConfig(cache_size=cache))


def verdict(r: EvalResult) -> tuple[Any, ...]:
    return (r.allowed, r.needs_approval, r.reasons, r.violations, r.warnings, r.audit,
            r.approvals, r.policy_versions, r.error, r.input_hash)


def gate_inputs() -> list[dict[str, Any]]:
    out = []
    for i in range(48):
        action = ("scale_up", "scale_down", "migrate_vm", "disable_feature")[i % 4]
        out.append({
            "subject": {"user": "dqn", "role": ("agent", "admin", "viewer")[i % 3]},
            "action": action,
            "resource": {"id": f"svc-{i % 5}", "environment": ("production", "staging")[i % 2],
                         "region": ("eu-west-1", "us-east-1")[i % 2], "active_vms": i % 7,
                         "labels": {"data_class": "pii" if i % 3 == 0 else "public"}},
            "runbook": {"id": "x", "implements": [action]},
            "context": {"params": {"delta": i % 3, "target_region": "us-east-1"},
                        "confidence": (i % 10) / 10, "incident": i % 5 == 0,
                        "migrations_last_hour": i % 6, "quota": {"max_vms": 4}},
        })
    return out


def test_a_batch_gives_every_input_its_verdict_alone(backend: str) -> None:
    inputs = gate_inputs()
    alone = [verdict(make(backend, SHIPPED).evaluate(v)) for v in inputs]
    batched = [verdict(r) for r in make(backend, SHIPPED).evaluate_batch(inputs)]
    assert batched == alone
    assert len({repr(v[:3]) for v in alone}) > 3  # the inputs really differ in outcome


def test_both_engines_agree_on_the_shipped_policies() -> None:
    if find_opa() is None:
        pytest.skip("no OPA binary (see the backend fixture)")
    inputs = gate_inputs()
    regopy = [verdict(r) for r in make("regopy", SHIPPED).evaluate_batch(inputs)]
    wasm = [verdict(r) for r in make("wasm", SHIPPED).evaluate_batch(inputs)]
    assert wasm == regopy


def strict_policy() -> PolicyVersion:
    rego = ('package t.strict\nimport rego.v1\n'
            'deny contains "too many" if to_number(input.context.n) > 10\n')
    return PolicyVersion(policy_id="t.strict", rego=rego, content_hash=content_hash(rego),
                         policy_type="action_safety")


def test_one_bad_input_fails_alone(backend: str) -> None:
    values: list[Any] = [{"context": {"n": str(n)}} for n in (3, 30, 5)]
    values.insert(1, {"context": {"n": "abc"}})  # to_number fails for this one only
    values.append({"context": {"n": object()}})  # not JSON at all
    results = make(backend, [strict_policy()]).evaluate_batch(values)
    assert [r.allowed for r in results] == [True, False, False, True, False]
    assert results[1].reasons == [f"t.strict: policy error ({RUNTIME_ERROR}), failing closed"]
    assert results[2].violations == ["t.strict: too many"] and results[2].error is None
    assert results[4].error is not None and "t.strict: policy error" in results[4].reasons[0]


def test_the_cache_serves_batches(backend: str) -> None:
    engine = make(backend, SHIPPED, cache=64)
    inputs = gate_inputs()[:6]
    first = engine.evaluate_batch(inputs + inputs[:2])  # duplicates within one batch too
    again = engine.evaluate_batch(inputs)
    assert all(r.cached for r in again) and not any(r.cached for r in first[:6])
    assert [verdict(r) for r in again] == [verdict(r) for r in first[:6]]
    assert engine.hits >= 6


def test_the_gate_counts_a_released_migration_for_the_next_decision_in_the_batch(
        backend: str) -> None:
    rego = ('package t.mig\nimport rego.v1\n'
            'deny contains "limit" if {\n\tinput.action == "migrate_vm"\n'
            '\tinput.context.migrations_last_hour >= 1\n}\n')
    limit = PolicyVersion(policy_id="t.mig", rego=rego, content_hash=content_hash(rego),
                          policy_type="action_safety")

    def gate() -> PolicyGate:
        return PolicyGate(make(backend, [limit]), GateConfig(policy_types=["action_safety"]),
                          Resolver(Library().get))

    decisions = [Decision(resource_id=rid, decision_type="migrate_vm",
                          params={"target_host": "h2"}, confidence=0.9)
                 for rid in ("vm-1", "vm-2", "vm-1", "vm-1")]
    one_gate, batch_gate = gate(), gate()
    alone = [one_gate.evaluate(d, now=NOW).verdict.outcome for d in decisions]
    batched = [r.verdict.outcome for r in
               batch_gate.evaluate_batch([(d, None) for d in decisions], now=NOW)]
    assert batched == alone == ["allow", "allow", "deny", "deny"]


def test_scanner_batches_agree_with_single_checks() -> None:
    library = load_library()
    scanner = Scanner(library, RegoEvaluator(library))
    resources = [Resource(address=f"aws_s3_bucket.b{i}", type="aws_s3_bucket",
                          config={"bucket": f"b{i}", "acl": ("private", "public-read")[i % 2]})
                 for i in range(6)]
    resources.append(Resource(address="aws_db_instance.x", type="aws_db_instance",
                              config={"storage_encrypted": "yes please"}))
    batched = scanner.checks(resources)
    single = [scanner.check(s.subject) for s in batched]
    assert [(c.verdicts, c.error) for c in batched] == [(c.verdicts, c.error) for c in single]
    assert any(c.failing for c in batched)


SPRINTF_CASES = [
    ("%s on %s", ["scale_up", "web"]), ("%v migrations (limit %v)", [3, 3]),
    ("%.2f/h above %.2f/h", [12.5, 10]), ("%v", [0.6]), ("%v", [1e21]), ("%v", [1.5e-7]),
    ("%d items", [7]), ("%v and %v", [["a", 1], {"k": True}]), ("%v", [None]),
    ("%s", [3]), ("%q", ["x\"y"]), ("%5s|%-5s|", ["ab", "cd"]), ("%x", [255]),
    ("missing %s %s", ["one"]), ("100%%", []), ("%s", ["a", 2]), ("no verbs", []),
]


def test_host_sprintf_matches_opa(tmp_path: Path) -> None:
    opa = find_opa()
    if opa is None:
        pytest.skip("no OPA binary (see the backend fixture)")
    query = "[" + ", ".join(f"sprintf({json.dumps(f)}, {json.dumps(a)})"
                            for f, a in SPRINTF_CASES) + "]"
    done = subprocess.run([str(opa), "eval", "--format", "json", query], capture_output=True,
                          text=True, timeout=60, check=True)
    expected = json.loads(done.stdout)["result"][0]["expressions"][0]["value"]
    assert [sprintf(f, a) for f, a in SPRINTF_CASES] == expected


def test_shipped_rego_tests_pass_on_opa() -> None:
    opa = find_opa()
    if opa is None:
        pytest.skip("no OPA binary (see the backend fixture)")
    done = subprocess.run([str(opa), "test", str(ROOT / "policies" / "rego")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "PASS" in done.stdout
