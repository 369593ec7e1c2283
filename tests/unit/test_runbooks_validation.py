"""Runbook loading and validation: the seed format, the schema, the library, each error by step."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
import yaml

from runbooks.engine import Engine
from runbooks.interpolate import StaticSecrets
from runbooks.loader import LIBRARY_DIR, SCHEMA_PATH, Library, load_text
from runbooks.model import ValidationError
from runbooks.runtime import EngineConfig
from tests.unit.test_runbooks_support import book

SEED = """\
metadata:
  id: db-failover
  name: Database Failover Procedure
  type: incident_response
  version: 1.0

steps:
  - id: step-1
    name: Detect primary failure
    action_type: command
    action: pg_isready -h ${primary_host}
    timeout: 10
    retry_count: 3

  - id: step-2
    name: Promote standby
    action_type: command
    action: pg_ctl promote -D /var/lib/postgresql/data
    critical: true
    dependencies: [step-1]

  - id: step-3
    name: Update DNS
    action_type: api
    action: https://api.dns.com/records/${record_id}
    parameters:
      method: PUT
      data:
        target: ${new_primary_ip}
    dependencies: [step-2]

  - id: step-4
    name: Notify team
    action_type: notification
    action: "Failover completed: ${primary_host} -> ${new_primary}"
    parameters:
      channel: slack
      recipients: ["#ops-team"]
"""
"""Section 8 of the seed, verbatim."""

SEED_CONTEXT = {
    "primary_host": "db1.example.com",
    "new_primary_ip": "10.0.1.2",
    "record_id": "12345",
}


def engine(**kw: object) -> Engine:
    cfg = EngineConfig(default_webhook_url="http://127.0.0.1:9/hook", **kw)  # type: ignore[arg-type]
    return Engine(cfg, secrets=StaticSecrets({"TOKEN": "s3cr3t"}))


def problems(
    runbook_steps: list[dict[str, Any]], variables: dict[str, object], **kw: object
) -> list[str]:
    with pytest.raises(ValidationError) as info:
        engine(**kw).validate(book(runbook_steps), variables)
    return info.value.problems


def test_seed_loads_unchanged() -> None:
    rb = load_text(SEED)
    assert rb.id == "db-failover" and rb.metadata.version == "1.0"
    assert [s.id for s in rb.steps] == ["step-1", "step-2", "step-3", "step-4"]
    step1 = rb.step("step-1")
    assert step1.argv == ("pg_isready", "-h", "${primary_host}")  # split at load, filled later
    assert step1.policy.max_attempts == 4 and step1.timeout == 10
    assert rb.step("step-2").critical and rb.step("step-3").kind == "http"


def test_seed_context_misses_new_primary_and_says_where() -> None:
    with pytest.raises(ValidationError) as info:
        engine().validate(load_text(SEED), SEED_CONTEXT)
    assert info.value.problems == ["step step-4: missing variable ${new_primary}"]


def test_library_has_every_runbook_and_each_matches_the_schema() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in LIBRARY_DIR.glob("*.yaml"):
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)
    wanted = {
        "scale-up",
        "scale-down",
        "migrate-vm",
        "rebalance",
        "drift-revert",
        "restart-service",
        "db-failover",
        "notify",
    }
    assert wanted <= set(Library().ids())


def test_schema_errors_name_the_step() -> None:
    with pytest.raises(ValidationError) as info:
        load_text("metadata: {id: x}\nsteps:\n  - id: a\n    action_type: noop\n    timeout: -1\n")
    assert "step a: timeout" in str(info.value)
    with pytest.raises(ValidationError, match="not valid YAML"):
        load_text("steps: [")


def test_unknown_dependency_cycle_and_type_are_each_reported() -> None:
    found = problems(
        [
            {"id": "a", "action_type": "noop", "dependencies": ["c"]},
            {"id": "b", "action_type": "teleport"},
            {"id": "c", "action_type": "noop", "dependencies": ["a"]},
            {"id": "d", "action_type": "noop", "dependencies": ["ghost"]},
        ],
        {},
    )
    assert "step d: unknown dependency 'ghost'" in found
    assert any(p.startswith("step b: unknown step type 'teleport'") for p in found)
    cycle = [p for p in found if "cycle" in p]
    assert cycle and ("a -> c -> a" in cycle[0] or "c -> a -> c" in cycle[0])


def test_missing_variables_and_secrets_name_the_step() -> None:
    found = problems(
        [
            {
                "id": "a",
                "action_type": "http",
                "action": "http://x/${host}",
                "parameters": {"headers": {"Authorization": "Bearer ${secret:NOPE}"}},
            },
            {"id": "b", "action_type": "noop", "when": "region == 'eu'"},
        ],
        {},
    )
    assert "step a: missing variable ${host}" in found
    assert any(p.startswith("step a: secret NOPE is not set") for p in found)
    assert "step b: condition reads unknown name 'region'" in found


def test_command_rules() -> None:
    steps = [
        {"id": "a", "action_type": "command", "action": "${tool} --x"},
        {"id": "b", "action_type": "command", "action": "rm ${target}"},
        {"id": "c", "action_type": "command", "action": "echo ${target}"},
        {"id": "d", "action_type": "command", "action": "echo ${n}"},
    ]
    found = problems(
        steps,
        {"tool": "rm", "target": "--no-preserve-root", "n": "-3"},
        allowed_executables=["echo"],
    )
    assert "step a: the executable must be literal, not '${tool}'" in found
    assert "step b: executable 'rm' is not in the allow-list" in found
    assert any(p.startswith("step c: value of ${target} starts with '-'") for p in found)
    assert not any(p.startswith("step d") for p in found)  # a negative number is a value


def test_nul_and_oversized_values_are_refused() -> None:
    steps = [{"id": "a", "action_type": "command", "action": "echo --v=${v}"}]
    assert problems(steps, {"v": "a\x00b"}) == ["step a: variable v contains a NUL byte"]
    assert problems(steps, {"v": "x" * 70_000}) == ["step a: variable v is longer than 65536 chars"]


def test_condition_language_is_restricted() -> None:
    found = problems([{"id": "a", "action_type": "noop", "when": "__import__('os')"}], {})
    assert found and "Call is not allowed" in found[0]


def test_type_specific_checks() -> None:
    found = problems(
        [
            {"id": "k", "action_type": "kafka", "parameters": {"event_type": "Nope"}},
            {"id": "g", "action_type": "argocd", "action": "explode", "parameters": {}},
            {
                "id": "r",
                "action_type": "argocd",
                "action": "rollback",
                "parameters": {"server": "http://a", "app": "x"},
            },
        ],
        {},
    )
    assert "step k: unknown event type 'Nope'" in found
    assert any(p.startswith("step g: unknown argocd action 'explode'") for p in found)
    assert "step g: argocd step needs parameters.server" in found
    # a rollback without an id goes to the previous revision of the application's history
    assert not any(p.startswith("step r:") for p in found)


def test_valid_runbook_returns_merged_context() -> None:
    rb = book([{"id": "a", "action_type": "noop"}], variables={"x": 1, "y": 2})
    assert engine().validate(rb, {"y": 3}) == {"x": 1, "y": 3}
