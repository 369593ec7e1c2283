"""The plan gate: a saved Terraform plan is judged by the compliance controls and Rego policies.

`PlanJudge.judge(plan, context)` scans what the plan would leave behind (every created or
updated resource, `terraform_data` resources unwrapped to the type they model) with the control
library, then evaluates the policies of type `infrastructure` on

    {"action": "terraform_apply", "subject": {"role": "executor"}, "resource": {"id": …},
     "context": {"plan": {"resource_changes": [{address, type, actions, after}]},
                 "compliance": {"violations": [...], "block_severities": [...]}, …}}

so Rego decides on the whole picture (`policies/rego/infrastructure/`). Anything but a clean
answer denies. `python -m policies.plan_gate PLAN.json` runs it in its own process: the execute
role never loads regopy, so its terraform steps call this as a child (exit 0 allowed, 3 denied,
the verdict as JSON on stdout).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from policies.compliance import RegoEvaluator, Resource, Scanner, load_library
from policies.engine import RegoEngine, StaticSource
from policies.source import load_directory
from schemas.errors import NovacronError

__all__ = ["PLAN_POLICY_TYPE", "SHIPPED", "PlanJudge", "main", "modelled_resources", "plan_input"]

SHIPPED = Path(__file__).with_name("rego")
"""The shipped Rego policies (policies/rego)."""
PLAN_POLICY_TYPE = "infrastructure"
"""Policy type of the Rego policies that judge plans (the decision gate never runs them)."""
_SKIP = (["delete"], ["no-op"], ["read"], ["forget"])


def _modelled(address: str, rtype: str, after: Any) -> Resource:
    # terraform_data {input = {resource_type, config}} stands in for a provider resource
    if rtype == "terraform_data" and isinstance(after, Mapping):
        given = after.get("input")
        if isinstance(given, Mapping) and isinstance(given.get("resource_type"), str):
            config = given.get("config")
            return Resource(address, given["resource_type"],
                            dict(config) if isinstance(config, Mapping) else {})
    return Resource(address, rtype, dict(after) if isinstance(after, Mapping) else {})


def modelled_resources(plan: Mapping[str, Any]) -> list[Resource]:
    """What the plan leaves behind, typed for the compliance scanner."""
    out = []
    for rc in plan.get("resource_changes") or []:
        change = rc.get("change") or {}
        if rc.get("mode", "managed") != "managed" or change.get("actions") in _SKIP:
            continue
        out.append(_modelled(str(rc.get("address")), str(rc.get("type")), change.get("after")))
    return out


def plan_input(plan: Mapping[str, Any], context: Mapping[str, Any],
               violations: list[dict[str, Any]], block: Sequence[str]) -> dict[str, Any]:
    """The Rego input for one plan."""
    changes = []
    for rc in plan.get("resource_changes") or []:
        change = rc.get("change") or {}
        actions = change.get("actions") or []
        if actions in (["no-op"], ["read"]):
            continue
        res = _modelled(str(rc.get("address")), str(rc.get("type")), change.get("after"))
        changes.append({"address": rc.get("address"), "type": rc.get("type"),
                        "modelled_type": res.type, "actions": actions, "after": res.config})
    return {
        "action": "terraform_apply",
        "subject": {"role": "executor", "user": "novacron.executor"},
        "resource": {"id": str(context.get("resource_id", ""))},
        "context": {**context, "plan": {"resource_changes": changes},
                    "compliance": {"violations": violations, "block_severities": list(block)}},
    }


class PlanJudge:
    """Compliance scan plus Rego policies over one plan (in-process: loads regopy)."""

    def __init__(self, policy_dirs: Sequence[Path], block_severities: Sequence[str]) -> None:
        self.library = load_library()
        self.scanner = Scanner(self.library, RegoEvaluator(self.library))
        policies = [p for d in policy_dirs for p in load_directory(Path(d))
                    if p.policy_type == PLAN_POLICY_TYPE]
        self.engine = RegoEngine(StaticSource(policies))
        self.block = [s.upper() for s in block_severities]

    def violations(self, plan: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every control a planned resource fails."""
        found = []
        for resource in modelled_resources(plan):
            check = self.scanner.check(resource)
            for control_id in sorted(check.failing):
                control = self.library.controls[control_id]
                found.append({"resource_id": resource.address, "resource_type": resource.type,
                              "control_id": control_id, "title": control.title,
                              "severity": control.severity})
        return found

    def judge(self, plan: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
        """{allowed, reasons, violations, policy_versions}; an error denies."""
        violations = self.violations(plan)
        result = self.engine.evaluate(plan_input(plan, context, violations, self.block),
                                      types=[PLAN_POLICY_TYPE])
        return {"allowed": bool(result.allowed and not result.needs_approval),
                "reasons": list(result.violations or result.reasons),
                "violations": violations, "policy_versions": dict(result.policy_versions),
                "error": result.error}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policies.plan_gate",
                                     description="Judge a saved Terraform plan (show -json).")
    parser.add_argument("plan", type=Path, help="plan JSON file (terraform show -json PLAN)")
    parser.add_argument("--context", type=Path, help="JSON file with the action's context")
    parser.add_argument("--policies", type=Path, action="append", default=[],
                        help="Rego policy folder (repeatable; default: the shipped policies/rego)")
    parser.add_argument("--block", action="append", default=[],
                        help="compliance severity that blocks (repeatable)")
    args = parser.parse_args(argv)
    try:
        plan = orjson.loads(args.plan.read_bytes())
        context = orjson.loads(args.context.read_bytes()) if args.context else {}
        judge = PlanJudge(args.policies or [SHIPPED],
                          args.block or ["CRITICAL", "HIGH", "MEDIUM"])
        verdict = judge.judge(plan, context)
    except (OSError, ValueError, NovacronError) as exc:  # fail closed, say why
        verdict = {"allowed": False, "reasons": [f"plan gate error: {exc}"], "violations": []}
    sys.stdout.write(orjson.dumps(verdict).decode() + "\n")
    return 0 if verdict["allowed"] else 3


if __name__ == "__main__":
    sys.exit(main())
