"""Engine: enforcement modes, fail-closed, rollback, signatures, cache invalidation."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.engine import EngineConfig, RegoEngine, StaticSource
from policies.registry import PolicyRegistry, RegistryConfig
from policies.signing import generate_key, public_key_of, sign_hash
from policies.source import content_hash, load_directory
from schemas.errors import RejectedError

POLICY_DIR = Path(__file__).resolve().parents[2] / "policies" / "rego"

SAFETY = """package novacron.t.safety
import rego.v1
deny contains "no scale_down in an incident" if {
    input.action == "scale_down"
    input.context.incident
}
approval_required contains "production" if input.resource.environment == "production"
"""
LIMIT_V1 = """package novacron.t.limit
import rego.v1
deny contains "too many" if input.context.n > 5
"""
LIMIT_V2 = LIMIT_V1.replace("> 5", "> 1")
BROKEN = "package novacron.t.broken\nimport rego.v1\ndeny contains x if {\n x := \n}\n"
RBAC = (POLICY_DIR / "access" / "rbac.rego").read_text()


def scale_down(incident: bool, env: str = "staging") -> dict:
    return {
        "subject": {"user": "dqn", "role": "agent"},
        "action": "scale_down",
        "resource": {"id": "web", "environment": env},
        "context": {"incident": incident},
    }


def engine_with(reg: PolicyRegistry, **cfg: int) -> RegoEngine:
    return RegoEngine(reg, EngineConfig(**cfg))


@pytest.mark.parametrize(
    ("mode", "allowed", "violations", "warnings", "audit"),
    [("block", False, 1, 0, 0), ("warn", True, 0, 1, 0), ("audit", True, 0, 0, 1)],
)
def test_enforcement_modes(
    mode: str, allowed: bool, violations: int, warnings: int, audit: int
) -> None:
    reg = PolicyRegistry()
    reg.register("safety", SAFETY, policy_type="action_safety", enforcement=mode)
    result = engine_with(reg).evaluate(scale_down(incident=True))
    assert result.allowed is allowed
    assert (len(result.violations), len(result.warnings), len(result.audit)) == (
        violations,
        warnings,
        audit,
    )
    assert result.policy_versions == {"safety": 1}
    assert result.input_hash and result.error is None
    # warn attaches its reasons; audit only records them
    assert ("safety: no scale_down in an incident" in result.reasons) is (mode != "audit")


def test_allowed_when_no_policy_objects() -> None:
    reg = PolicyRegistry()
    reg.register("safety", SAFETY, policy_type="action_safety")
    result = engine_with(reg).evaluate(scale_down(incident=False))
    assert result.allowed and not result.needs_approval and result.reasons == []


def test_approval_required_in_block_mode() -> None:
    reg = PolicyRegistry()
    reg.register("safety", SAFETY, policy_type="action_safety")
    result = engine_with(reg).evaluate(scale_down(incident=False, env="production"))
    assert result.allowed and result.needs_approval
    assert result.approvals == ["safety: production"]


def test_allow_rule_policy() -> None:
    reg = PolicyRegistry()
    reg.register("rbac", RBAC)
    engine = engine_with(reg)
    ask = {"subject": {"user": "o", "role": "operator"}, "resource": {"type": "policy"}}
    assert engine.evaluate({**ask, "action": "read"}).allowed
    denied = engine.evaluate({**ask, "action": "write"})
    assert not denied.allowed
    assert denied.violations == ["rbac: role 'operator' may not write policy"]


def test_broken_block_policy_fails_closed_and_says_why() -> None:
    reg = PolicyRegistry()
    reg.register("safety", SAFETY, policy_type="action_safety")
    reg.register("broken", BROKEN, policy_type="action_safety")
    result = engine_with(reg).evaluate(scale_down(incident=False))
    assert not result.allowed
    assert result.error is not None and "broken: policy error (compile error" in result.error
    assert "failing closed" in result.error


def test_broken_warn_policy_only_warns() -> None:
    reg = PolicyRegistry()
    reg.register("safety", SAFETY, policy_type="action_safety")
    reg.register("broken", BROKEN, policy_type="action_safety", enforcement="warn")
    result = engine_with(reg).evaluate(scale_down(incident=False))
    assert result.allowed
    assert any("broken: policy error" in w for w in result.warnings)


def test_runtime_error_fails_closed() -> None:
    conflict = (
        "package novacron.t.c\nimport rego.v1\n"
        'x := 1 if input.a\nx := 2 if input.a\ndeny contains "d" if x == 1\n'
    )
    reg = PolicyRegistry()
    reg.register("conflict", conflict, policy_type="security")
    result = engine_with(reg).evaluate({"a": True})
    assert not result.allowed and result.error


def test_no_policy_in_scope_fails_closed() -> None:
    reg = PolicyRegistry()
    reg.register("safety", SAFETY, policy_type="action_safety")
    result = engine_with(reg).evaluate(scale_down(True), types={"network"})
    assert not result.allowed and result.error == "no enabled policy in scope"


def test_rollback_restores_old_decision() -> None:
    reg = PolicyRegistry()
    reg.register("limit", LIMIT_V1, policy_type="resource_allocation")
    engine = engine_with(reg)
    probe = {"context": {"n": 3}}
    assert engine.evaluate(probe).allowed
    reg.update("limit", rego=LIMIT_V2)
    assert not engine.evaluate(probe).allowed
    event = reg.rollback("limit", 1, author="ana")
    assert event.version == 3 and event.change == "rollback" and event.rego == LIMIT_V1
    result = engine.evaluate(probe)
    assert result.allowed and result.policy_versions == {"limit": 3}
    assert [e.version for e in reg.history("limit")] == [1, 2, 3]


def test_disable_and_enable() -> None:
    reg = PolicyRegistry()
    reg.register("limit", LIMIT_V2, policy_type="resource_allocation")
    reg.register("safety", SAFETY, policy_type="action_safety")
    engine = engine_with(reg)
    probe = {"context": {"n": 3}, "action": "x", "resource": {}}
    assert not engine.evaluate(probe).allowed
    reg.disable("limit")
    assert engine.evaluate(probe).allowed
    reg.enable("limit")
    assert not engine.evaluate(probe).allowed


def test_cache_hits_and_invalidation_on_update() -> None:
    reg = PolicyRegistry()
    reg.register("limit", LIMIT_V1, policy_type="resource_allocation")
    engine = engine_with(reg, cache_size=16)
    probe = {"context": {"n": 3}}
    first, second = engine.evaluate(probe), engine.evaluate({"context": {"n": 3}})
    assert first.allowed and second.allowed and second.cached and not first.cached
    assert (engine.hits, engine.misses) == (1, 1)
    reg.update("limit", rego=LIMIT_V2)
    after = engine.evaluate(probe)
    assert not after.cached and not after.allowed


def test_signed_policy_accepted_and_tampered_refused() -> None:
    key = generate_key()
    writer = PolicyRegistry(RegistryConfig(trusted_keys=[public_key_of(key)]))
    event = writer.register(
        "limit",
        LIMIT_V1,
        policy_type="resource_allocation",
        signature=sign_hash(content_hash(LIMIT_V1), key),
    )
    reader = PolicyRegistry(RegistryConfig(trusted_keys=[public_key_of(key)]))
    assert reader.apply(event)
    tampered = event.model_copy(update={"rego": LIMIT_V2, "event_id": "t1"})
    with pytest.raises(RejectedError, match="content hash"):
        PolicyRegistry(RegistryConfig(trusted_keys=[public_key_of(key)])).apply(tampered)
    rehashed = tampered.model_copy(
        update={"content_hash": content_hash(LIMIT_V2), "event_id": "t2"}
    )
    with pytest.raises(RejectedError, match="signature"):
        PolicyRegistry(RegistryConfig(trusted_keys=[public_key_of(key)])).apply(rehashed)


def test_unsigned_refused_when_signatures_required() -> None:
    reg = PolicyRegistry(RegistryConfig(require_signatures=True))
    with pytest.raises(RejectedError, match="unsigned"):
        reg.register("limit", LIMIT_V1, policy_type="resource_allocation")


def test_registry_rebuilds_from_events_and_ignores_duplicates() -> None:
    reg = PolicyRegistry()
    events = [
        reg.register("limit", LIMIT_V1, policy_type="resource_allocation"),
        reg.update("limit", rego=LIMIT_V2),
        reg.disable("limit"),
    ]
    replica = PolicyRegistry()
    assert replica.apply_all(events + events[:1]) == []
    assert replica.get("limit") == reg.get("limit")
    assert not replica.get("limit").enabled and replica.get("limit").version == 2


def test_duplicate_package_refused() -> None:
    reg = PolicyRegistry()
    reg.register("a", LIMIT_V1, policy_type="resource_allocation")
    with pytest.raises(RejectedError, match="already used"):
        reg.register("b", LIMIT_V2, policy_type="resource_allocation")


def test_shipped_policies_load_with_types_and_modes() -> None:
    events = load_directory(POLICY_DIR)
    kinds = {e.policy_type for e in events}
    assert {
        "access",
        "resource_allocation",
        "security",
        "network",
        "data_governance",
        "action_safety",
    } <= kinds
    reg = PolicyRegistry()
    assert len(reg.seed(events)) == len(events)
    assert reg.seed(events) == []
    engine = RegoEngine(StaticSource(events))
    result = engine.evaluate(scale_down(incident=True, env="production"), types={"action_safety"})
    assert not result.allowed and result.error is None


def test_input_projection_keeps_whole_input_when_read_wholesale() -> None:
    wholesale = (
        'package novacron.t.w\nimport rego.v1\ndeny contains "w" if object.get(input, "z", 0)\n'
    )
    dotted = 'package novacron.t.d\nimport rego.v1\ndeny contains "d" if input.y == 1\n'
    reg = PolicyRegistry()
    reg.register("dotted", dotted, policy_type="security")
    engine = engine_with(reg)
    assert not engine.evaluate({"y": 1, "z": 1}).allowed
    assert engine.evaluate({"y": 0, "z": 1}).allowed
    reg.register("wholesale", wholesale, policy_type="security")
    assert engine.evaluate({"y": 0, "z": 1}).violations == ["wholesale: w"]
