"""The committed NAB samples are what their generators write, in NAB's format."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from models.nab.corpus import load_corpus
from models.nab.scorer import load_profiles
from tests.nab_data import EXCERPT, SYNTHETIC


def _generator():  # tests/fixtures is data, not a package
    spec = importlib.util.spec_from_file_location("generate", SYNTHETIC / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix in (".csv", ".json")}


def test_generated_sample_is_reproducible(tmp_path: Path) -> None:
    _generator().main(tmp_path)
    assert _files(tmp_path) == _files(SYNTHETIC)


def test_generated_sample_loads_as_a_nab_corpus() -> None:
    files = load_corpus(SYNTHETIC)
    windows = json.loads((SYNTHETIC / "labels/combined_windows.json").read_text())
    assert len(files) == 5 and set(windows) == {f.name for f in files}
    assert sum(len(w) for w in windows.values()) == 5  # one per anomaly; the quiet file has none
    for f in files:
        in_windows = int((f.labelled.window_id >= 0).sum())
        assert in_windows in ((0,) if not windows[f.name] else range(195, 206))  # ≈10 % of rows
    assert load_profiles(SYNTHETIC / "config/profiles.json") == load_profiles(
        EXCERPT / "config/profiles.json")
