"""`novacron policy test`: the runner finds and runs the shipped *_test.rego files."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from policies.testing import discover, run_path
from streams.cli.policy import app

POLICY_DIR = Path(__file__).resolve().parents[2] / "policies" / "rego"


def test_every_policy_has_a_test_file_beside_it() -> None:
    for module in POLICY_DIR.rglob("*.rego"):
        if not module.stem.endswith("_test"):
            assert module.with_name(f"{module.stem}_test.rego").exists(), module


def test_shipped_tests_all_pass() -> None:
    files = discover(POLICY_DIR)
    assert len(files) >= 6
    cases = run_path(POLICY_DIR, isolate=False)
    assert len(cases) >= 20
    assert {c.status for c in cases} == {"PASS"}, [c for c in cases if c.status != "PASS"]


def test_failures_and_errors_are_reported(tmp_path: Path) -> None:
    (tmp_path / "x.rego").write_text(
        'package t.x\nimport rego.v1\ndeny contains "d" if input.a == 1\n'
    )
    (tmp_path / "x_test.rego").write_text(
        "package t.x_test\nimport rego.v1\nimport data.t.x\n"
        'test_pass if { x.deny["d"] with input.a as 1 }\n'
        'test_fail if { x.deny["d"] with input.a as 2 }\n'
    )
    (tmp_path / "y.rego").write_text("package t.y\nimport rego.v1\nallow if {\n")
    (tmp_path / "y_test.rego").write_text(
        "package t.y_test\nimport rego.v1\ntest_y if { data.t.y.allow }\n"
    )
    statuses = {c.name: c.status for c in run_path(tmp_path)}
    assert statuses == {
        "t.x_test.test_pass": "PASS",
        "t.x_test.test_fail": "FAIL",
        "t.y_test.test_y": "ERROR",
    }


def test_cli_exit_code(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["test", str(POLICY_DIR / "access")])
    assert ok.exit_code == 0, ok.output
    assert "PASS" in ok.output and "6 passed" in ok.output
    (tmp_path / "z.rego").write_text("package t.z\nimport rego.v1\ndefault allow := false\n")
    (tmp_path / "z_test.rego").write_text(
        "package t.z_test\nimport rego.v1\ntest_z if { data.t.z.allow }\n"
    )
    bad = runner.invoke(app, ["test", str(tmp_path)])
    assert bad.exit_code == 1 and "FAIL" in bad.output
