"""The SLO-budget report: per trace and budget, who meets it and at what cost, oracle and choice."""

from __future__ import annotations

from pydantic import BaseModel, Field

from agents.simulator.evaluate import EpisodeStats

__all__ = ["FAMILIES", "BudgetReport", "TraceBudget", "Verdict", "budget_report", "budget_row",
           "choose"]

FAMILIES = ("hpa-", "predictive-")
"""Controller families whose single setting is chosen on validation traces (name prefixes)."""
LEARNED = ("dqn",)
"""Controllers that are not rivals: the engine under test."""


class Verdict(BaseModel):
    """One controller on one trace at one budget."""

    controller: str
    violation_pct: float
    vm_hours: float
    cost: float
    meets: bool
    """Violation share within the budget."""


class TraceBudget(BaseModel):
    """One trace at one budget."""

    trace: str
    budget_pct: float
    controllers: list[Verdict]
    oracle: str | None
    """The cheapest rival (by cost) that meets the budget on this trace, in hindsight."""
    chosen: dict[str, str | None]
    """Family → the setting chosen on the validation traces (what an SRE would deploy)."""


class BudgetReport(BaseModel):
    """The whole report: the choice per family and budget, then every trace at every budget."""

    budgets_pct: list[float]
    chosen_on: list[str]
    """Traces the settings were chosen on."""
    chosen: dict[str, dict[str, str | None]] = Field(default_factory=dict)
    """Budget (as text) → family → chosen setting (None: the family has no setting)."""
    traces: list[TraceBudget] = Field(default_factory=list)


def budget_row(budget: float) -> str:
    """Name of the DQN's row run for one budget (the budget in its state): `dqn@B`."""
    return f"dqn@{budget:g}"


def _at_budget(rows: list[EpisodeStats], budget: float) -> list[EpisodeStats]:
    """The rivals plus the DQN row run for this budget, named "dqn" (rows without per-budget
    DQN runs are returned as they are)."""
    name = budget_row(budget)
    out = [r for r in rows if not r.controller.startswith("dqn@")]
    out += [r.model_copy(update={"controller": "dqn"}) for r in rows if r.controller == name]
    return out


def _verdicts(rows: list[EpisodeStats], budget: float) -> list[Verdict]:
    return [Verdict(controller=r.controller, violation_pct=r.slo_violation_pct,
                    vm_hours=r.vm_hours, cost=r.cost, meets=r.slo_violation_pct <= budget)
            for r in rows]


def choose(runs: dict[str, list[EpisodeStats]], family: str, budget: float) -> str | None:
    """The family's setting that meets the budget on the most traces, ties to the lowest total
    cost over them (when none meets it anywhere: the lowest total violation): one setting for
    every trace, chosen as an SRE would choose it."""
    met: dict[str, int] = {}
    cost: dict[str, float] = {}
    violation: dict[str, float] = {}
    for rows in runs.values():
        for r in (r for r in rows if r.controller.startswith(family)):
            met[r.controller] = met.get(r.controller, 0) + (r.slo_violation_pct <= budget)
            cost[r.controller] = cost.get(r.controller, 0.0) + r.cost
            violation[r.controller] = violation.get(r.controller, 0.0) + r.slo_violation_pct
    if not met:
        return None
    return min(met, key=lambda name: (-met[name], cost[name] if met[name] else violation[name],
                                      name))


def _oracle(verdicts: list[Verdict]) -> str | None:
    rivals = [v for v in verdicts if v.meets and v.controller not in LEARNED]
    return min(rivals, key=lambda v: (v.cost, v.controller)).controller if rivals else None


def budget_report(runs: dict[str, list[EpisodeStats]], budgets: list[float],
                  chosen_on: dict[str, list[EpisodeStats]] | None = None) -> BudgetReport:
    """Judge every run (trace → rows) at each budget; settings are chosen on `chosen_on`
    (default: the runs themselves, i.e. when the runs are the validation traces)."""
    basis = runs if chosen_on is None else chosen_on
    report = BudgetReport(budgets_pct=budgets, chosen_on=sorted(basis))
    for budget in budgets:
        picks = {family.rstrip("-"): choose(basis, family, budget) for family in FAMILIES}
        report.chosen[f"{budget:g}"] = picks
        for trace, rows in runs.items():
            verdicts = _verdicts(_at_budget(rows, budget), budget)
            report.traces.append(TraceBudget(trace=trace, budget_pct=budget,
                                             controllers=verdicts, oracle=_oracle(verdicts),
                                             chosen=picks))
    return report
