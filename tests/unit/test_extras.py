"""`pip install novacron` (no torch) runs every role's decision path; training names the extra."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.roles import ROLES

# what an environment without the `learn` extra looks like to Python: no module named torch
NO_TORCH = """
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _NoTorch())
"""
HINT = "pip install 'novacron[learn]'"


def _run(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "NOVACRON_DATA_DIR": str(tmp_path / "var"), "COLUMNS": "200", **env}
    return subprocess.run([sys.executable, "-c", NO_TORCH + code], capture_output=True,
                          text=True, env=full, cwd=tmp_path, timeout=300)


@pytest.mark.parametrize("role", list(ROLES))
def test_every_role_builds_and_serves_metrics_without_torch(role: str, tmp_path: Path) -> None:
    code = (f"from streams.worker import build_worker\nfrom streams.metrics import render\n"
            f"build_worker({role!r})\nassert render(role={role!r})\n"
            "assert 'torch' not in sys.modules\nprint('ok')")
    result = _run(code, tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_online_training_without_torch_fails_at_start_naming_the_extra(tmp_path: Path) -> None:
    code = "from streams.worker import build_worker\nbuild_worker('learn')"
    result = _run(code, tmp_path, NOVACRON_DECISION_HOST__ONLINE_TRAINING="true")
    assert result.returncode != 0
    assert "MissingExtra" in result.stderr and HINT in result.stderr


def test_train_command_without_torch_names_the_extra(tmp_path: Path) -> None:
    code = ("from streams.cli.main import main\n"
            "sys.argv = ['novacron', 'train', 'dqn', '--episodes', '1', '--ticks', '20', "
            f"'--model-dir', {str(tmp_path / 'models')!r}]\nmain()")
    result = _run(code, tmp_path)
    assert result.returncode == 2
    assert "DQN training needs torch" in result.stdout and HINT in result.stdout
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())
