"""The NAB scorer reproduces Numenta's published per-file scores and per-row S(t) columns."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from models.nab.corpus import evaluate_corpus, normalise
from models.nab.scorer import (
    PROBATION,
    CostProfile,
    label_file,
    load_profiles,
    probation_length,
    row_scores,
    scaled_sigmoid,
    score_file,
    sweep,
)
from tests.nab_data import EXCERPT, FULL_NAB, needs_full_nab, skip_without_full_nab

PROFILES = load_profiles(EXCERPT / "config/profiles.json")


def _row_files(root: Path) -> list[Path]:
    return sorted((root / "results/numenta").glob("*/numenta_*.csv"))


def _row_cases() -> list[object]:
    """The excerpt's reference files always; the full folder's 23 when present, else one skip."""
    cases: list[object] = [pytest.param(EXCERPT, p, id=f"excerpt-{p.stem}")
                           for p in _row_files(EXCERPT)]
    if FULL_NAB is None:
        return [*cases, pytest.param(None, None, id="full-nab", marks=skip_without_full_nab())]
    return cases + [pytest.param(FULL_NAB, p, id=p.stem) for p in _row_files(FULL_NAB)]


def _published(root: Path, profile: str) -> dict[str, dict[str, str]]:
    path = root / f"results/numenta/numenta_{profile}_scores.csv"
    with path.open() as fh:
        return {r["File"]: r for r in csv.DictReader(fh)}


def _load_rows(path: Path) -> tuple[str, list[dict[str, str]]]:
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    return f"{path.parent.name}/{path.name.removeprefix('numenta_')}", rows


def test_excerpt_holds_two_reference_files_and_nabs_profiles() -> None:
    assert [p.name for p in _row_files(EXCERPT)] == [
        "numenta_art_daily_nojump.csv", "numenta_art_load_balancer_spikes.csv"]
    assert set(PROFILES) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate"}


@needs_full_nab
def test_reference_files_are_there() -> None:
    assert FULL_NAB is not None
    assert len(_row_files(FULL_NAB)) == 23
    assert load_profiles(FULL_NAB / "config/profiles.json") == PROFILES


@pytest.mark.parametrize(("root", "path"), _row_cases())
def test_per_file_scores_and_rows_match_published(root: Path, path: Path) -> None:
    windows = json.loads((root / "labels/combined_windows.json").read_text())
    name, rows = _load_rows(path)
    labelled = label_file(name, [r["timestamp"] for r in rows], windows[name])
    scores = np.array([float(r["anomaly_score"]) for r in rows])
    in_window = labelled.window_id >= 0
    labels = np.array([int(r["label"]) for r in rows])
    scored = labelled.window_id != PROBATION
    assert np.array_equal(in_window[scored], labels[scored] == 1)
    for profile_name, profile in PROFILES.items():
        published = _published(root, profile_name)[name]
        threshold = float(published["Threshold"])
        result = score_file(labelled, scores, threshold, profile)
        assert result.score == pytest.approx(float(published["Score"]), abs=1e-6)
        counts = (result.tp, result.tn, result.fp, result.fn)
        assert counts == tuple(int(published[k]) for k in ("TP", "TN", "FP", "FN"))
        expected = np.array([float(r[f"S(t)_{profile_name}"]) for r in rows])
        got = row_scores(labelled, scores, threshold, profile)
        assert np.abs(got - expected).max() < 1e-6


def test_probation_and_sigmoid() -> None:
    assert probation_length(4032) == 604
    assert probation_length(15833) == 750
    assert scaled_sigmoid(3.5) == -1.0
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(-1.0) == pytest.approx(0.986614298)


def _tiny() -> tuple[list[str], list[list[str]]]:
    stamps = [f"2020-01-01 00:{m:02d}:00" for m in range(40)]
    return stamps, [[stamps[20] + ".000000", stamps[24] + ".000000"]]


def test_sweep_equals_brute_force_scores_at_every_threshold() -> None:
    rng = np.random.default_rng(7)
    stamps, windows = _tiny()
    labelled = label_file("tiny.csv", stamps, windows)
    scores = np.round(rng.random(len(stamps)), 2)
    profile = PROFILES["standard"]
    for entry in sweep([(labelled, scores)], profile):
        brute = score_file(labelled, scores, entry.threshold, profile).score
        assert entry.score == pytest.approx(brute, abs=1e-12)


def test_early_detection_beats_late_and_fp_costs() -> None:
    stamps, windows = _tiny()
    labelled = label_file("tiny.csv", stamps, windows)
    profile = CostProfile("p", 1.0, 0.11, 1.0)
    early, late, miss = np.zeros(40), np.zeros(40), np.zeros(40)
    early[20], late[24] = 1.0, 1.0
    assert score_file(labelled, early, 0.5, profile).score == pytest.approx(1.0, abs=0.02)
    late_score = score_file(labelled, late, 0.5, profile).score
    assert 0.4 < late_score < 0.5  # last row of a 5-row window: σ(−0.2)/σ(−1)
    assert score_file(labelled, miss, 0.5, profile).score == -1.0
    early[10] = 1.0  # before the first window: a full false positive
    assert score_file(labelled, early, 0.5, profile).score == pytest.approx(1.0 - 0.11, abs=0.02)


def test_normalisation_of_null_and_perfect_detectors() -> None:
    stamps, windows = _tiny()
    labelled = label_file("tiny.csv", stamps, windows)
    perfect = np.zeros(40)
    perfect[20] = 1.0
    null = np.zeros(40)
    for profile in PROFILES.values():
        assert evaluate_corpus([(labelled, null)], {"p": profile}).profiles["p"].normalised == 0.0
        best = evaluate_corpus([(labelled, perfect)], {"p": profile}).profiles["p"]
        assert best.normalised == pytest.approx(100.0, abs=1.0)
        assert best.threshold == 1.0
    assert normalise(0.0, 10, PROFILES["reward_low_FN_rate"]) == (pytest.approx(200 / 3), -20, 10)
