"""The SLO-budget report: who meets a budget, the hindsight oracle, one setting per family."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from agents.simulator.budget import budget_report, choose
from agents.simulator.evaluate import EpisodeStats
from models.slo import SLOConfig
from streams.cli.dqn import app


def _row(name: str, violation: float, vm_hours: float) -> EpisodeStats:
    return EpisodeStats(controller=name, ticks=100, slo_violation_pct=violation,
                        vm_hours=vm_hours, cost=vm_hours / 10, total_reward=0.0, actions=0,
                        mean_latency_ms=100.0)


RUNS = {
    "a": [_row("static-peak", 0.0, 100), _row("hpa-50", 0.5, 60), _row("hpa-80", 3.0, 40),
          _row("predictive-q90-60", 0.8, 50), _row("dqn", 1.5, 30)],
    "b": [_row("static-peak", 0.2, 120), _row("hpa-50", 1.5, 70), _row("hpa-80", 6.0, 45),
          _row("predictive-q90-60", 0.9, 65), _row("dqn", 0.9, 35)],
}


def test_the_oracle_is_the_cheapest_rival_meeting_the_budget_never_the_engine() -> None:
    report = budget_report(RUNS, [1.0, 5.0])
    at = {(e.trace, e.budget_pct): e for e in report.traces}
    assert at[("a", 1.0)].oracle == "predictive-q90-60"  # the DQN is cheaper but no rival
    assert at[("b", 1.0)].oracle == "predictive-q90-60"
    assert at[("a", 5.0)].oracle == "hpa-80" and at[("b", 5.0)].oracle == "predictive-q90-60"
    dqn = {v.controller: v for v in at[("b", 1.0)].controllers}["dqn"]
    assert dqn.meets and dqn.vm_hours == 35


def test_one_setting_per_family_meets_the_budget_on_the_most_traces_then_costs_least() -> None:
    assert choose(RUNS, "hpa-", 1.0) == "hpa-50"  # meets on 1 of 2; hpa-80 on none
    assert choose(RUNS, "hpa-", 10.0) == "hpa-80"  # both meet everywhere: the cheaper
    report = budget_report(RUNS, [1.0], chosen_on={"v": RUNS["b"]})
    # on "b" no HPA setting meets 1 %: the one that violates least is the SRE's pick
    assert report.chosen["1"] == {"hpa": "hpa-50", "predictive": "predictive-q90-60"}
    assert {e.trace for e in report.traces} == {"a", "b"}
    assert report.chosen_on == ["v"]


def test_the_slo_is_typed_config_with_a_one_percent_default_budget() -> None:
    slo = SLOConfig()
    assert (slo.latency_percentile, slo.latency_ms, slo.budget_pct) == (95.0, 250.0, 1.0)
    assert slo.met(1.0) and not slo.met(1.01) and slo.met(4.0, budget_pct=5.0)


def test_eval_autoscale_reports_budgets_as_json(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("timestamp,value\n" + "".join(
        f"2020-01-01 {i // 12:02d}:{5 * (i % 12):02d}:00,{1 + (i % 7)}\n" for i in range(40)))
    out = tmp_path / "budget.json"
    result = CliRunner().invoke(app, ["eval", "autoscale", "--no-dqn", "--trace", str(trace),
                                      "--slo-budget", "1", "--slo-budget", "5", "--json",
                                      str(out)])
    assert result.exit_code == 0, result.output
    body = json.loads(out.read_text())
    assert body["budgets_pct"] == [1.0, 5.0] and body["chosen_on"] == ["t"]
    assert set(body["chosen"]["5"]) == {"hpa", "predictive"}
    entry = body["traces"][0]
    names = [v["controller"] for v in entry["controllers"]]
    assert "static-peak" in names and "hpa-10" in names and "predictive-q90-80" in names
