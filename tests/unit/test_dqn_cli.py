"""The DQN CLI end to end on tiny runs: train → list → eval → rollback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.simulator.benchmark import deployed_config, verdict
from agents.simulator.evaluate import EpisodeStats
from models.dqn.checkpoints import CheckpointStore
from models.dqn.features import FeatureConfig
from models.dqn.reward import RewardConfig
from models.dqn.safety import SafetyConfig
from streams.cli import dqn as dqn_cli
from streams.cli.dqn import app
from streams.decision import SHIPPED_MODEL
from streams.publish import MemoryRecordTopic

runner = CliRunner()


def test_train_list_eval_rollback(tmp_path: Path) -> None:
    models = str(tmp_path / "models")
    for extra in ([], ["--cost-weight", "0.2"]):
        result = runner.invoke(app, ["train", "dqn", "--episodes", "1", "--ticks", "30",
                                     "--validation-ticks", "20", "--model-dir", models, *extra])
        assert result.exit_code == 0, result.output
    listed = runner.invoke(app, ["model", "list", "--model-dir", models])
    assert "v0001" in listed.output and "v0002" in listed.output
    out = tmp_path / "eval.json"
    result = runner.invoke(app, ["eval", "autoscale", "--ticks", "40", "--json", str(out),
                                 "--model-dir", models])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    names = [row["controller"] for row in report["rows"]]
    assert names == ["static-peak", *(f"hpa-{t}" for t in range(10, 100, 10)),
                     "predictive-q50-60", "predictive-q50-80", "predictive-q90-60",
                     "predictive-q90-80", "dqn"]
    assert report["dqn_beats_hpa_curve"] in (True, False)
    assert report["dqn_beats_hpa_curve_on_cost"] in (True, False)
    meta = json.loads((tmp_path / "models" / "v0002" / "meta.json").read_text())
    assert meta["config"]["best_episode"] == 0 and len(meta["config"]["validation"]) == 1
    first = json.loads((tmp_path / "models" / "v0001" / "meta.json").read_text())
    weights = [m["config"]["decision"]["reward"]["cost_weight"] for m in (first, meta)]
    assert weights == [RewardConfig().cost_weight, 0.2]  # the operating point is recorded
    rolled = runner.invoke(app, ["model", "rollback", "--local", "--model-dir", models])
    assert rolled.exit_code == 0 and "v0001" in rolled.output
    again = runner.invoke(app, ["model", "rollback", "--local", "--model-dir", models])
    assert again.exit_code == 2 and "nothing to roll back" in again.output


def test_clear_errors(tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", "autoscale", "--model-dir", str(tmp_path)])
    assert result.exit_code == 2 and "novacron train dqn" in " ".join(result.output.split())
    result = runner.invoke(app, ["eval", "autoscale", "--no-dqn", "--trace",
                                 str(tmp_path / "nope.csv")])
    assert result.exit_code == 2 and "not exist" in " ".join(result.output.split())


def _row(name: str, violations: float, vm_hours: float) -> EpisodeStats:
    return EpisodeStats(controller=name, ticks=10, slo_violation_pct=violations,
                        vm_hours=vm_hours, cost=0.0, total_reward=0.0, actions=0,
                        mean_latency_ms=0.0)


def test_the_cost_verdict_counts_the_cache() -> None:
    from agents.simulator.benchmark import BenchmarkResult
    from streams.cli.dqn import cost_verdict

    rows = [_row("hpa-90", 30, 60).model_copy(update={"cost": 6.0}),
            _row("dqn", 20, 40).model_copy(update={"cost": 5.9})]  # fewer VMs, cache bought
    result = BenchmarkResult(trace="t", seed=0, ticks=10, rows=rows, dqn_beats_hpa_curve=True,
                             vm_hours_saving_pct={"hpa-90": 33.33})
    assert cost_verdict(result) == (False, {"hpa-90": 1.67})


def test_the_verdict_needs_the_whole_curve_beaten() -> None:
    curve = [_row("hpa-50", 2, 100), _row("hpa-70", 10, 80), _row("hpa-90", 30, 60)]
    assert verdict(curve + [_row("dqn", 10, 50)]) == (True, {"hpa-70": 37.5, "hpa-90": 16.67})
    assert verdict(curve + [_row("dqn", 10, 58)])[0] is False  # only 3 % under hpa-90
    assert verdict(curve + [_row("dqn", 40, 10)]) == (False, {})  # worse SLO than every HPA
    assert verdict(curve) == (None, {})


def test_a_model_runs_with_its_training_config_at_the_deployed_quantile() -> None:
    trained = {"features": {"load_quantile": 0.7, "window": 12}, "reward": {"cost_weight": 0.2},
               "safety": {"overload_cpu": 95.0, "max_vms": 7}}
    deployed = deployed_config(trained)
    assert deployed.features.load_quantile == FeatureConfig().load_quantile == 0.5
    assert (deployed.features.window, deployed.reward.cost_weight) == (12, 0.2)
    assert deployed.safety == SafetyConfig()  # safety limits are the deployment's own
    assert deployed_config(trained, 0.3).features.load_quantile == 0.3


def test_eval_runs_the_model_under_the_deployed_safety_limits(tmp_path: Path,
                                                               monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import streams.cli.dqn as cli
    from models.dqn.checkpoints import CheckpointStore
    from models.dqn.policy import init_weights

    trained = {"safety": {"overload_cpu": 95.0}, "features": {"load_quantile": 0.7}}
    CheckpointStore(tmp_path).save(init_weights(0), {"config": {"decision": trained}})
    seen = []

    def fake_compare(cfg, weights, decision, version, progress=None, slo=None):  # type: ignore[no-untyped-def]
        seen.append(decision)
        raise cli.NovacronError("stop here")

    monkeypatch.setattr(cli, "compare", fake_compare)
    monkeypatch.setenv("NOVACRON_DECISION__SAFETY__OVERLOAD_CPU", "85")
    monkeypatch.setenv("NOVACRON_DECISION__FEATURES__LOAD_QUANTILE", "0.6")
    result = runner.invoke(app, ["eval", "autoscale", "--model-dir", str(tmp_path)])
    assert result.exit_code == 2 and "stop here" in result.output
    assert seen[0].safety.overload_cpu == 85.0  # the deployment's, not the 95 trained with
    assert seen[0].features.load_quantile == 0.6


# --- deploying to running workers: the model-versions topic (in memory here) ---------------------
@pytest.fixture
def versions(monkeypatch: pytest.MonkeyPatch) -> MemoryRecordTopic:
    topic = MemoryRecordTopic()
    monkeypatch.setattr(dqn_cli, "_versions_topic", lambda: topic)
    return topic


def _deployed(topic: MemoryRecordTopic) -> list[str]:
    return [json.loads(v)["version"] for _k, v in topic.records if v is not None]


def test_rollback_deploys_the_version_before_the_deployed_one(
        tmp_path: Path, versions: MemoryRecordTopic) -> None:
    empty = str(tmp_path / "none")  # no local models: the shipped ones
    shipped = CheckpointStore(SHIPPED_MODEL)
    current = shipped.current()
    assert current is not None
    earlier = sorted((m.version for m in shipped.list_versions() if m.version < current),
                     reverse=True)
    first = runner.invoke(app, ["model", "rollback", "--model-dir", empty, "--by", "ana"])
    assert first.exit_code == 0, first.output
    for _ in earlier[1:]:
        again = runner.invoke(app, ["model", "rollback", "--model-dir", empty])
        assert again.exit_code == 0, again.output
    # each rollback deploys the shipped version before the deployed one, down to the first
    assert _deployed(versions) == [f"shipped-{v}" for v in earlier]
    assert earlier[-1] == "v0001"
    assert json.loads(versions.records[0][1] or b"")["set_by"] == "ana"
    last = runner.invoke(app, ["model", "rollback", "--model-dir", empty])
    assert last.exit_code == 2 and "nothing to roll back" in last.output
    deploy = runner.invoke(app, ["model", "deploy", "v0003", "--model-dir", empty])
    assert deploy.exit_code == 0 and _deployed(versions)[-1] == "v0003"


@pytest.mark.parametrize("bad", ["v9999", "../../etc/passwd", "latest"])
def test_unknown_or_malformed_versions_are_not_deployed(
        tmp_path: Path, versions: MemoryRecordTopic, bad: str) -> None:
    result = runner.invoke(app, ["model", "deploy", bad, "--model-dir", str(tmp_path)])
    assert result.exit_code == 2 and versions.records == []
