"""A clone of the repository alone (no ../shared beside it) collects every test without error and
runs the NAB tests on the committed samples, skipping the full-data ones with a reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed HEAD cloned into an empty folder (nothing beside it)."""
    target = tmp_path_factory.mktemp("bare") / "novacron"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(target)], check=True, timeout=120)
    assert not (target.parent / "shared").exists()
    return target


def _pytest(clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NOVACRON_NAB_DATA"}
    env["PYTHONPATH"] = str(clone)  # the clone's code, not this checkout's
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=clone, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_bare_clone_collects_every_test_without_errors(clone: Path) -> None:
    result = _pytest(clone, "--collect-only", "-q")
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "error" not in summary and "tests collected" in summary, summary


@pytest.mark.slow
def test_bare_clone_runs_nab_tests_on_samples_and_says_why_it_skips(clone: Path) -> None:
    result = _pytest(clone, "-q", "tests/unit/test_nab_scorer.py",
                     "tests/unit/test_models_anomaly.py")
    out = result.stdout
    assert result.returncode == 0, out[-4000:]
    assert "failed" not in out and " passed" in out
    skips = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert len(skips) == 3, out[-4000:]  # reference files, the 23 rows, AWS files
    assert all("NOVACRON_NAB_DATA" in line and "shared/data/nab" in line for line in skips)
