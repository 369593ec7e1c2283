"""Validation of effector steps before anything runs: known actions and required parameters."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from runbooks.interpolate import VAR
from runbooks.model import Step
from runbooks.steps.aws import AWS_ACTIONS
from runbooks.steps.edits import OPS
from runbooks.steps.gitrepo import GIT_ACTIONS
from runbooks.steps.kubernetes import KUBERNETES_ACTIONS
from runbooks.steps.terraform import TERRAFORM_ACTIONS

__all__ = ["EFFECT_CHECKS"]


def _action(step: Step, known: frozenset[str], default: str | None) -> list[str]:
    action = step.action if step.action is not None else default
    if action in known:
        return []
    return [f"unknown {step.kind} action {action!r} (known: {', '.join(sorted(known))})"]


def _needs(step: Step, *names: str) -> list[str]:
    return [f"{step.kind} step needs parameters.{n}" for n in names if not step.parameters.get(n)]


def _changes(raw: Any) -> list[str]:
    if not isinstance(raw, list) or not raw:
        return ["git commit needs parameters.changes (a non-empty list)"]
    problems = []
    for i, change in enumerate(raw, 1):
        if not isinstance(change, Mapping) or change.get("op") not in OPS:
            problems.append(f"change #{i}: op must be one of {', '.join(sorted(OPS))}")
            continue
        path = str(change.get("path", ""))
        if path and not path.startswith("/"):
            problems.append(f"change #{i}: path {path!r} is not a JSON pointer")
        if change["op"] != "remove" and "value" not in change:
            problems.append(f"change #{i}: {change['op']} needs a value")
    return problems


def _git(step: Step, *_: Any) -> list[str]:
    problems = _action(step, GIT_ACTIONS, "commit")
    if step.action in ("revert_commit", "verify_revert"):
        problems += _needs(step, "repositories", "repository", "commit")
        table = step.parameters.get("repositories")
        if table and (not isinstance(table, Mapping) or any(VAR.search(str(k)) for k in table)):
            problems.append("git repositories must map literal names to URLs or paths")
        return problems
    problems += _needs(step, "repo")
    if (step.action or "commit") == "commit":
        problems += _needs(step, "file") + _changes(step.parameters.get("changes"))
    return problems


def _terraform(step: Step, *_: Any) -> list[str]:
    problems = _action(step, TERRAFORM_ACTIONS, "apply") + _needs(step, "dir")
    variables = step.parameters.get("variables", {})
    if not isinstance(variables, Mapping) or any(VAR.search(str(k)) for k in variables):
        problems.append("terraform variables must be a mapping with literal names")
    return problems


def _kubernetes(step: Step, *_: Any) -> list[str]:
    problems = _action(step, KUBERNETES_ACTIONS, None) + _needs(step, "name")
    if step.action == "scale" and not ({"replicas", "add", "remove"} & step.parameters.keys()):
        problems.append("kubernetes scale needs parameters.replicas, add or remove")
    if step.action == "patch" and not isinstance(step.parameters.get("patch"), Mapping):
        problems.append("kubernetes patch needs parameters.patch (a mapping)")
    return problems


_AWS_NEEDS = {"set_desired_capacity": ("group",), "revoke_ingress": ("group_id", "rules"),
              "put_bucket_encryption": ("bucket",)}


def _aws(step: Step, *_: Any) -> list[str]:
    problems = _action(step, AWS_ACTIONS, None)
    if step.action == "set_desired_capacity" and not (
            {"capacity", "add", "remove"} & step.parameters.keys()):
        problems.append("set_desired_capacity needs parameters.capacity, add or remove")
    return problems + _needs(step, *_AWS_NEEDS.get(str(step.action), ()))


EFFECT_CHECKS: dict[str, Callable[..., list[str]]] = {
    "git": _git, "terraform": _terraform, "kubernetes": _kubernetes, "aws": _aws,
}
"""Per effector step type: the validation of its shape (problems, without the step prefix)."""
