"""`novacron eval autoscale --slo-budget`: run the controllers on several traces, judge budgets."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from rich.table import Table

from agents.decision import DecisionConfig
from agents.simulator.benchmark import BenchmarkConfig, compare, dqn_row
from agents.simulator.budget import BudgetReport, TraceBudget, budget_report, budget_row
from agents.simulator.evaluate import EpisodeStats
from agents.simulator.world import SimConfig
from models.dqn.checkpoints import CheckpointStore
from models.slo import SLOConfig

__all__ = ["Job", "render", "run_report"]

Job = tuple[str, int, int | None, str | None, str | None, dict[str, Any] | None, dict[str, Any],
            list[float]]
"""(trace, seed, ticks, model dir, version or None for no DQN, decision config, SLO config,
budgets)."""


def _run(job: Job) -> tuple[str, list[EpisodeStats]]:
    trace, seed, ticks, model_dir, version, decision, slo, budgets = job
    sim = SimConfig.autoscaling(seed=seed, trace=trace)
    engine = DecisionConfig.model_validate(decision) if decision is not None else None
    result = compare(BenchmarkConfig(sim=sim, ticks=ticks), None, engine, version,
                     slo=SLOConfig.model_validate(slo))
    rows = result.rows
    if version is not None and model_dir is not None and engine is not None:
        rows += _dqn_rows(sim, result.ticks, CheckpointStore(Path(model_dir)).load(version),
                          engine, version, budgets, SLOConfig.model_validate(slo))
    return trace, rows


def _dqn_rows(sim: SimConfig, ticks: int, weights: dict[str, Any], engine: DecisionConfig,
              version: str, budgets: list[float], slo: SLOConfig) -> list[EpisodeStats]:
    """The DQN run once per budget, that budget in its state (`dqn@B`); a model without a
    reference budget (trained before budgets) is run once and judged at every budget."""
    rc = engine.reward.model_copy(update={"slo_latency_ms": slo.latency_ms,
                                          "slo_error_rate": slo.error_rate})
    conditioned = engine.features.budget_reference_pct is not None
    rows: list[EpisodeStats] = []
    for budget in budgets:
        if rows and not conditioned:
            rows.append(rows[0].model_copy(update={"controller": budget_row(budget)}))
            continue
        config = engine.model_copy(deep=True)
        config.features.slo_budget_pct = budget
        config.features.budget_tracking = config.features.budget_tracking.judged_by(slo)
        rows.append(dqn_row(sim, ticks, weights, config, version, rc, budget_row(budget)))
    return rows


def run_report(traces: list[str], choose_on: list[str], budgets: list[float], jobs: int,
               common: tuple[int, int | None, str | None, str | None, dict[str, Any] | None],
               slo: SLOConfig) -> BudgetReport:
    """Every controller on every trace (the DQN only on `traces`), then the budget report with
    settings chosen on `choose_on` (default: `traces`)."""
    seed, ticks, model_dir, version, decision = common
    extra = [t for t in choose_on if t not in traces]
    work: list[Job] = [(t, seed, ticks, model_dir, version, decision, slo.model_dump(), budgets)
                       for t in traces]
    work += [(t, seed, ticks, None, None, None, slo.model_dump(), budgets) for t in extra]
    if jobs > 1 and len(work) > 1:
        with ProcessPoolExecutor(jobs) as pool:
            done = dict(pool.map(_run, work))
    else:
        done = dict(map(_run, work))
    runs = {Path(t).stem: done[t] for t in traces}
    basis = {Path(t).stem: done[t] for t in (choose_on or traces)}
    return budget_report(runs, budgets, basis)


def _cell(entry: TraceBudget, name: str | None) -> str:
    row = next((v for v in entry.controllers if v.controller == name), None)
    if row is None:
        return "–"
    mark = "✔" if row.meets else "✘"
    return f"{mark} {row.violation_pct:.2f} % {row.vm_hours:.0f} VM-h {row.cost:.1f}"


def render(report: BudgetReport) -> list[Table]:
    """One table per budget: each trace with the oracle, the chosen settings, static, the DQN."""
    tables = []
    for budget in report.budgets_pct:
        picks = report.chosen[f"{budget:g}"]
        table = Table(title=f"SLO budget {budget:g} % (✔ meets it; violation %, VM-hours, "
                            f"cost); settings chosen on {len(report.chosen_on)} traces: "
                            + ", ".join(f"{k} {v}" for k, v in picks.items()))
        columns = ["trace", "oracle (cheapest rival meeting it)", *picks, "static-peak", "dqn"]
        for column in columns:
            table.add_column(column)
        for entry in (e for e in report.traces if e.budget_pct == budget):
            oracle = f"{entry.oracle}: {_cell(entry, entry.oracle)}" if entry.oracle else "none"
            table.add_row(entry.trace, oracle, *(_cell(entry, p) for p in picks.values()),
                          _cell(entry, "static-peak"), _cell(entry, "dqn"))
        tables.append(table)
    return tables
