"""Which runbook an action runs and with which typed variables: one answer for gate and executor.

`Resolver.resolve(action_type, params)` is the gate's side: the runbook comes from configuration
(`action type → runbook id`); only `run_runbook` may name one, and only a runbook that declares
`metadata.selectable: true`. Params may set only declared, overridable parameters, each checked
against its type and bounds; endpoint, credential and webhook parameters never come from events.
`Resolver.verify(...)` is the executor's side: it re-resolves what an Action carries against its
own library and configuration and refuses anything that differs from what the gate approved.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from runbooks.model import Runbook
from runbooks.params import CONFIG_KINDS, IDENTITY, ParamError, Parameter, check_value
from schemas.errors import RejectedError

__all__ = [
    "DEFAULT_RUNBOOKS",
    "NO_RUNBOOK",
    "RefusedAction",
    "ResolvedAction",
    "Resolver",
    "check_overrides",
]

DEFAULT_RUNBOOKS: dict[str, str] = {
    "scale_up": "scale-up",
    "scale_down": "scale-down",
    "migrate_vm": "migrate-vm",
    "rebalance_load": "rebalance",
    "revert_drift": "drift-revert",
    "accept_drift": "drift-accept",
    "remediate_compliance": "compliance-remediate",
    "enable_feature": "feature-enable",
    "disable_feature": "feature-disable",
    "adjust_policy": "throttle",
    "apply_recommendation": "apply-recommendation",
}
"""Action type → runbook id (configuration, never event data); `run_runbook` picks a selectable
runbook by `params.runbook`."""
NO_RUNBOOK: frozenset[str] = frozenset({"no_action"})
"""Action types that run nothing."""
Source = Literal["event", "workflow", "operator"]


class RefusedAction(RejectedError):
    """The action may not run as asked; the message names the rule it breaks."""


@dataclass(frozen=True)
class ResolvedAction:
    """What will run: the runbook, its content hash, and every event-visible variable, typed."""

    action_type: str
    """The action type that carried it."""
    runbook_id: str | None
    """The runbook (None: the action type runs nothing)."""
    runbook_hash: str | None = None
    """SHA-256 of the runbook's canonical content."""
    implements: tuple[str, ...] = ()
    """The action types whose effect the runbook has."""
    selectable: bool = False
    """The runbook may be picked by `run_runbook`."""
    variables: dict[str, Any] = field(default_factory=dict)
    """Value-kind variables after defaults, configuration and overrides (typed)."""
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Schema facts of every declared variable (config kinds included, without their values)."""

    def policy_view(self) -> dict[str, Any]:
        """`input.runbook` for the policies."""
        return {
            "id": self.runbook_id,
            "hash": self.runbook_hash,
            "implements": list(self.implements),
            "selectable": self.selectable,
            "parameters": self.parameters,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (gate snapshots)."""
        return {"action_type": self.action_type, **self.policy_view(),
                "variables": self.variables}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResolvedAction:
        return cls(data["action_type"], data["id"], data["hash"], tuple(data["implements"]),
                   data["selectable"], dict(data["variables"]), dict(data["parameters"]))


def _refuse(message: str) -> RefusedAction:
    return RefusedAction(message)


class Resolver:
    """Pure resolution over a runbook lookup, the action-type mapping and configured defaults."""

    def __init__(
        self,
        lookup: Callable[[str], Runbook],
        runbooks: Mapping[str, str] | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        self.lookup = lookup
        self.runbooks = dict(DEFAULT_RUNBOOKS if runbooks is None else runbooks)
        self.defaults = dict(defaults or {})

    def resolve(self, action_type: str, params: Mapping[str, Any]) -> ResolvedAction:
        """The gate's side: RefusedAction when the params may not run as asked."""
        params = dict(params)
        book = self.runbook_for(action_type, params.pop("runbook", None))
        if book is None:
            if params:
                raise _refuse(f"{action_type} runs nothing and takes no params "
                              f"(got {', '.join(sorted(params))})")
            return ResolvedAction(action_type, None)
        return self._resolved(action_type, book, check_overrides(book, params, "event"))

    def verify(
        self,
        action_type: str,
        runbook_id: str | None,
        runbook_hash: str | None,
        variables: Mapping[str, Any],
    ) -> ResolvedAction:
        """The executor's side: the Action must carry exactly what resolution gives here."""
        if runbook_id is None and action_type in NO_RUNBOOK and not variables:
            return ResolvedAction(action_type, None)
        if runbook_id is None:
            raise _refuse("the action names no runbook: it was not resolved by the gate")
        book = self.runbook_for(action_type, runbook_id)
        assert book is not None  # a named runbook never resolves to none
        if runbook_hash != book.content_hash:
            raise _refuse(f"runbook {book.id} is not the one the gate approved (content hash "
                          f"{str(runbook_hash)[:12]}… ≠ {book.content_hash[:12]}…)")
        overridable = {k: v for k, v in variables.items()
                       if k in book.declared and book.declared[k].overridable}
        resolved = self._resolved(action_type, book, check_overrides(book, overridable, "event"))
        differ = sorted(k for k in {*variables, *resolved.variables}
                        if _canonical(variables.get(k, _MISSING)) !=
                        _canonical(resolved.variables.get(k, _MISSING)))
        if differ:
            raise _refuse(f"runbook {book.id}: variables differ from what resolution gives "
                          f"here ({', '.join(differ)})")
        return resolved

    def runbook_for(self, action_type: str, requested: Any) -> Runbook | None:
        """The runbook an action type runs; `requested` (params.runbook) only for run_runbook."""
        if requested is not None and not isinstance(requested, str):
            raise _refuse("params.runbook must be a runbook id (a string)")
        if action_type == "run_runbook":
            if not requested:
                raise _refuse("run_runbook needs params.runbook: the id of a selectable runbook")
            book = self._get(requested)
            if not book.metadata.selectable:
                raise _refuse(f"runbook {requested} is not selectable by events "
                              "(it does not declare metadata.selectable: true)")
            return book
        configured = self.runbooks.get(action_type)
        if configured is None:
            if action_type in NO_RUNBOOK and not requested:
                return None
            raise _refuse(f"no runbook serves action type {action_type!r} (executor.runbooks)")
        if requested is not None and requested != configured:
            raise _refuse(f"action type {action_type} runs runbook {configured} (configuration); "
                          f"runbook {requested!r} is refused: only run_runbook may choose a "
                          "runbook")
        return self._get(configured)

    def _get(self, runbook_id: str) -> Runbook:
        try:
            return self.lookup(runbook_id)
        except KeyError as exc:
            raise _refuse(str(exc.args[0]) if exc.args else f"unknown runbook {runbook_id!r}"
                          ) from None

    def _resolved(self, action_type: str, book: Runbook, overrides: dict[str, Any]
                  ) -> ResolvedAction:
        declared = book.declared
        values: dict[str, Any] = {}
        problems: list[str] = []
        for name, spec in declared.items():
            if spec.kind in CONFIG_KINDS:
                continue
            # configured defaults never reach value parameters: gate and executor may differ in
            # configuration, never in what they resolve
            value = overrides.get(name, spec.default)
            try:
                values[name] = _required(name, spec, value)
            except ParamError as exc:
                problems.append(f"parameter {name} {exc}")
        if problems:
            raise _refuse(f"runbook {book.id}: " + "; ".join(problems))
        return ResolvedAction(
            action_type, book.id, book.content_hash, tuple(book.metadata.implements),
            book.metadata.selectable, values,
            {n: p.describe() for n, p in sorted(declared.items())})

    def config_values(self, book: Runbook) -> dict[str, Any]:
        """What the configuration adds at run time: endpoint, credential and webhook parameters
        (type-checked) and variables the runbook does not declare (seed-format runbooks)."""
        out: dict[str, Any] = {}
        for name, value in self.defaults.items():
            spec = book.declared.get(name)
            if spec is None and name not in IDENTITY:
                out[name] = value
            elif spec is not None and spec.kind in CONFIG_KINDS:
                try:
                    out[name] = check_value(spec, value)
                except ParamError as exc:
                    raise _refuse(f"executor.defaults.{name} {exc}") from None
        return out


_MISSING = object()


def _canonical(value: Any) -> str:
    if value is _MISSING:
        return "<missing>"
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _required(name: str, spec: Parameter, value: Any) -> Any:
    if value is None and spec.required:
        where = "the decision's params" if spec.overridable else "executor.defaults"
        raise ParamError(f"is required: it has no default and {where} do not set it")
    return check_value(spec, value)


def check_overrides(book: Runbook, values: Mapping[str, Any], source: Source) -> dict[str, Any]:
    """Typed values for the names given; RefusedAction listing every name that may not be set.

    `event`: only declared, overridable, value-kind parameters. `workflow` (a parent runbook's
    sub-workflow step): any declared or undeclared value-kind variable, never a config kind.
    `operator` (the CLI): anything; declared ones are still type-checked.
    """
    declared = book.declared
    out: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in values.items():
        spec = declared.get(name)
        if name in IDENTITY and source != "operator":
            problems.append(f"params.{name} is set from the action itself, not by params")
        elif spec is None:
            if source == "event":
                known = ", ".join(n for n, p in sorted(declared.items()) if p.overridable)
                problems.append(f"no parameter {name!r} (overridable: {known or 'none'})")
            else:
                out[name] = value
        elif spec.kind in CONFIG_KINDS and source != "operator":
            problems.append(f"parameter {name} is of kind {spec.kind}: it comes only from the "
                            "runbook file or the executor configuration, never from events")
        elif source == "event" and not spec.overridable:
            problems.append(f"parameter {name} is not overridable by events")
        else:
            try:
                out[name] = check_value(spec, value)
            except ParamError as exc:
                problems.append(f"parameter {name} {exc}")
    if problems:
        raise _refuse(f"runbook {book.id}: " + "; ".join(problems))
    return out
