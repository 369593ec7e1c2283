"""Every host setting lives in `Settings`: the config file and the environment reach it alike."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "sinks", "agents", "models", "policies", "runbooks", "streams")


def test_the_config_file_sets_the_execute_roles_consumption(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "novacron.yaml"
    config.write_text("executor_kafka:\n  concurrency: 3\n  approvals_cache: 50\n")
    monkeypatch.setenv("NOVACRON_CONFIG", str(config))
    assert Settings().executor_kafka.concurrency == 3
    monkeypatch.setenv("NOVACRON_EXECUTOR_KAFKA__CONCURRENCY", "2")  # env wins over the file
    settings = Settings()
    assert (settings.executor_kafka.concurrency, settings.executor_kafka.approvals_cache) == (2, 50)


def test_a_bad_value_is_refused_when_settings_are_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOVACRON_EXECUTOR_KAFKA__CONCURRENCY", "0")
    with pytest.raises(ValueError, match="concurrency"):
        Settings()


def _settings_classes(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
            and any(getattr(base, "id", getattr(base, "attr", "")) == "BaseSettings"
                    for base in node.bases)]


def test_no_settings_are_read_outside_the_one_settings_class() -> None:
    # a second BaseSettings reads the environment only: the config file would not reach it
    found = {str(path.relative_to(ROOT)): names for package in PACKAGES
             for path in sorted((ROOT / package).rglob("*.py"))
             if (names := _settings_classes(path))}
    assert found == {"streams/settings.py": ["Settings"]}
