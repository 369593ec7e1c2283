"""Validation before anything runs: DAG shape, step types, variables, values, executables."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from runbooks.conditions import ConditionError, names
from runbooks.interpolate import VAR, Secrets, references
from runbooks.model import STEP_TYPES, Runbook, Step, ValidationError
from runbooks.runtime import EngineConfig
from runbooks.shell import script_references
from runbooks.steps.argocd import ARGOCD_ACTIONS
from runbooks.steps.checks import EFFECT_CHECKS
from runbooks.steps.command import executable_allowed
from runbooks.urls import base_names, url_problems
from schemas import EVENT_TYPES

__all__ = ["find_cycle", "url_templates", "validate"]

_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def validate(
    runbook: Runbook,
    variables: Mapping[str, Any],
    secrets: Secrets,
    config: EngineConfig,
    known_runbook: Callable[[str], bool] | None = None,
    step_types: Collection[str] = STEP_TYPES,
) -> None:
    """Raise ValidationError listing every problem (each naming its step); None when runnable."""
    problems = _shape(runbook, step_types)
    overridable = frozenset(n for n, p in runbook.parameters.items() if p.overridable)
    bases = base_names(runbook.declared)
    for step in runbook.steps:
        comp = step.compensation_step()
        for s in [step] + ([comp] if comp is not None else []):
            problems += _step(s, variables, secrets, config, known_runbook)
            problems += shell_problems(s, overridable)
            problems += [f"step {s.id}: {where}: {p}" for where, template in url_templates(s)
                         for p in url_problems(template, bases)]
    if problems:
        raise ValidationError(problems)


def _shape(runbook: Runbook, step_types: Collection[str]) -> list[str]:
    problems: list[str] = []
    ids = [s.id for s in runbook.steps]
    for sid in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(f"step {sid}: duplicate step id")
    for step in runbook.steps:
        if step.kind not in step_types:
            known = ", ".join(sorted(step_types))
            problems.append(
                f"step {step.id}: unknown step type {step.action_type!r} (known: {known})"
            )
        for dep in step.dependencies:
            if dep not in ids:
                problems.append(f"step {step.id}: unknown dependency {dep!r}")
    cycle = find_cycle({s.id: [d for d in s.dependencies if d in ids] for s in runbook.steps})
    if cycle:
        problems.append(f"step {cycle[0]}: dependency cycle {' -> '.join(cycle)}")
    return problems


def find_cycle(graph: Mapping[str, list[str]]) -> list[str] | None:
    """A dependency cycle as a path that returns to its start, or None (iterative DFS)."""
    color: dict[str, int] = {}
    for root in graph:
        if color.get(root):
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = []
        while stack:
            node, i = stack.pop()
            if i == 0:
                color[node] = 1
                path.append(node)
            deps = graph.get(node, [])
            if i < len(deps):
                stack.append((node, i + 1))
                nxt = deps[i]
                if color.get(nxt) == 1:
                    return path[path.index(nxt) :] + [nxt]
                if not color.get(nxt):
                    stack.append((nxt, 0))
            else:
                color[node] = 2
                path.pop()
    return None


def _step(
    step: Step,
    variables: Mapping[str, Any],
    secrets: Secrets,
    config: EngineConfig,
    known_runbook: Callable[[str], bool] | None,
) -> list[str]:
    problems = _references(step, variables, secrets, config)
    if step.when:
        try:
            unknown = names(step.when) - set(variables) - {"steps"}
            problems += [
                f"step {step.id}: condition reads unknown name {n!r}" for n in sorted(unknown)
            ]
        except ConditionError as exc:
            problems.append(f"step {step.id}: {exc}")
    check = _TYPE_CHECKS.get(step.kind)
    if check is not None:
        problems += [f"step {step.id}: {p}" for p in check(step, variables, config, known_runbook)]
    return problems


def _references(
    step: Step, variables: Mapping[str, Any], secrets: Secrets, config: EngineConfig
) -> list[str]:
    problems = []
    refs = references([step.action, step.parameters, list(step.argv)])
    for ref in sorted(refs):
        if ref.startswith("secret:"):
            name = ref.removeprefix("secret:")
            if secrets.get(name) is None:
                problems.append(
                    f"step {step.id}: secret {name} is not set "
                    f"(NOVACRON_SECRET_{name} or a file named {name} in the secrets folder)"
                )
        elif ref not in variables:
            problems.append(f"step {step.id}: missing variable ${{{ref}}}")
        else:
            problems += _value_problems(step.id, ref, variables[ref], config)
    return problems


def shell_problems(step: Step, overridable: frozenset[str] = frozenset()) -> list[str]:
    """A `${var}` in an interpreter's code argument: refused unless the step is reviewed, and
    always when the variable is overridable by events (event data never reaches a shell)."""
    if step.kind != "command":
        return []
    problems = []
    for what, arg in script_references(step.argv):
        names = {m.group(2) for m in VAR.finditer(arg) if not m.group(1)}
        from_events = sorted(names & overridable)
        if from_events:
            problems.append(f"step {step.id}: {what}: event-overridable parameter(s) "
                            f"{', '.join(from_events)} would be parsed as code")
        elif step.shell_reviewed is None:
            problems.append(
                f"step {step.id}: {what}: the value of {', '.join(sorted(names))} would be "
                "parsed as code; pass it as its own argument (sh -c '… \"$1\"' sh ${x}), "
                "or mark the step `shell_reviewed: <why this is safe>`")
    return problems


def url_templates(step: Step) -> list[tuple[str, str]]:
    """(where, template) of every URL the step builds from its text."""
    params = step.parameters
    found = {
        "http": ("URL", step.action or params.get("url")),
        "notification": ("parameters.webhook_url", params.get("webhook_url")),
        "argocd": ("parameters.server", params.get("server")),
    }.get(step.kind)
    return [(found[0], found[1])] if found and isinstance(found[1], str) and found[1] else []


def _value_problems(step_id: str, name: str, value: Any, config: EngineConfig) -> list[str]:
    text = value if isinstance(value, str) else str(value)
    if "\x00" in text:
        return [f"step {step_id}: variable {name} contains a NUL byte"]
    if len(text) > config.max_value_length:
        return [f"step {step_id}: variable {name} is longer than {config.max_value_length} chars"]
    return []


def _command(step: Step, variables: Mapping[str, Any], config: EngineConfig, _: Any) -> list[str]:
    if not step.argv:
        return ["command has no argv (action is empty)"]
    if VAR.search(step.argv[0]):
        return [f"the executable must be literal, not {step.argv[0]!r}"]
    problems = _exit_codes(step)
    if not executable_allowed(step.argv[0], config):
        problems.append(f"executable {step.argv[0]!r} is not in the allow-list")
    for arg in step.argv[1:]:
        m = VAR.fullmatch(arg)
        value = str(variables.get(m.group(2), "")) if m and not m.group(1) else ""
        # a whole-argument value starting with '-' would be read as an option by the program
        if value.startswith("-") and not _NUMBER.fullmatch(value):
            problems.append(
                f"value of ${{{m.group(2) if m else ''}}} starts with '-' ({value[:40]!r})"
            )
    return problems


def _exit_codes(step: Step) -> list[str]:
    raw = step.parameters.get("expect_exit_codes")
    if raw is None:
        return []
    # literal integers only: a value from a variable could turn any failure into success
    if not isinstance(raw, list) or not raw or not all(
        isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in raw
    ):
        return ["parameters.expect_exit_codes must be a non-empty list of exit codes "
                "(integers 0-255) written in the runbook"]
    both = sorted(set(raw) & set(step.policy.non_retryable_exit_codes))
    if both:
        return [f"exit code(s) {', '.join(map(str, both))} both expected and non-retryable"]
    return []


def _http(step: Step, *_: Any) -> list[str]:
    return [] if step.action or step.parameters.get("url") else ["http step needs a URL (action)"]


def _notification(step: Step, _: Any, config: EngineConfig, __: Any) -> list[str]:
    problems = [] if step.action or step.parameters.get("text") else ["notification has no text"]
    if not (step.parameters.get("webhook_url") or config.default_webhook_url):
        problems.append("notification has no webhook_url and the engine has no default webhook")
    return problems


def _kafka(step: Step, *_: Any) -> list[str]:
    name = step.parameters.get("event_type", step.action)
    return [] if name in EVENT_TYPES else [f"unknown event type {name!r}"]


def _argocd(step: Step, *_: Any) -> list[str]:
    problems = (
        []
        if (step.action or "status") in ARGOCD_ACTIONS
        else [f"unknown argocd action {step.action!r} (known: {', '.join(sorted(ARGOCD_ACTIONS))})"]
    )
    for key in ("server", "app"):
        if not step.parameters.get(key):
            problems.append(f"argocd step needs parameters.{key}")
    return problems  # a rollback without parameters.id goes to the previous revision


def _workflow(step: Step, _: Any, __: Any, known: Callable[[str], bool] | None) -> list[str]:
    target = str(step.action or step.parameters.get("runbook", ""))
    if not target:
        return ["sub-workflow step needs a runbook id (action)"]
    if known is not None and not VAR.search(target) and not known(target):
        return [f"unknown runbook {target!r}"]
    return []


_TYPE_CHECKS: dict[str, Callable[..., list[str]]] = {
    "command": _command,
    "http": _http,
    "notification": _notification,
    "kafka": _kafka,
    "argocd": _argocd,
    "workflow": _workflow,
    **EFFECT_CHECKS,
}
