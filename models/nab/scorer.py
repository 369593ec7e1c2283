"""The NAB scoring method (v1.1 sweeper): row weights, per-file scores and the threshold sweep."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "OUTSIDE",
    "PROBATION",
    "CostProfile",
    "FileScore",
    "LabelledFile",
    "ThresholdScore",
    "label_file",
    "load_profiles",
    "probation_length",
    "row_scores",
    "scaled_sigmoid",
    "score_file",
    "sweep",
]

OUTSIDE = -1
"""Window id of a scored row outside every window."""
PROBATION = -2
"""Window id of a row inside the probationary period (never scored)."""


@dataclass(frozen=True)
class CostProfile:
    """One NAB application profile (the weights of its cost matrix)."""

    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


def load_profiles(path: Path) -> dict[str, CostProfile]:
    """Read `config/profiles.json` of a NAB checkout."""
    raw = json.loads(path.read_text())
    return {
        name: CostProfile(name, m["tpWeight"], m["fpWeight"], m["fnWeight"])
        for name, body in raw.items()
        for m in [body["CostMatrix"]]
    }


def probation_length(n_rows: int, probation_percent: float = 0.15) -> int:
    """Rows at the start of a file that are never scored: min(floor(0.15·N), 0.15·5000)."""
    return int(min(math.floor(probation_percent * n_rows), probation_percent * 5000))


def scaled_sigmoid(x: float) -> float:
    """NAB's scaled sigmoid: 2/(1+e^(5x)) − 1, and −1 beyond x = 3."""
    if x > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


@dataclass(frozen=True)
class LabelledFile:
    """A file's rows as the scorer sees them: unit weights, window ids and scorable windows.

    `tp_unit[i]` is σ(p)/σ(−1) inside a window (multiply by tpWeight); `fp_unit[i]` is the
    unweighted σ(p) (or −1) outside windows (multiply by fpWeight). `window_id[i]` is the index of
    the window holding row i, OUTSIDE, or PROBATION. `windows` lists the window ids that have at
    least one scored row (a window wholly inside the probation is neither TP nor FN, as in NAB).
    `window_start[w]` is the row index of window w's left edge.
    """

    name: str
    tp_unit: np.ndarray
    fp_unit: np.ndarray
    window_id: np.ndarray
    windows: tuple[int, ...]
    window_start: tuple[int, ...]

    def weights(self, profile: CostProfile) -> np.ndarray:
        """Sweep score of every row for a profile (NAB's `AnomalyPoint.sweepScore`)."""
        inside = self.window_id >= 0
        return np.where(inside, self.tp_unit * profile.tp_weight, self.fp_unit * profile.fp_weight)


def _window_rows(
    timestamps: Sequence[str], windows: Sequence[Sequence[str]]
) -> list[tuple[int, int]]:
    index = {t[:19]: i for i, t in enumerate(timestamps)}
    return [(index[start[:19]], index[end[:19]]) for start, end in windows]


def label_file(
    name: str, timestamps: Sequence[str], windows: Sequence[Sequence[str]]
) -> LabelledFile:
    """Port of NAB's `Sweeper.calcSweepScore`, independent of the anomaly scores and profile."""
    n = len(timestamps)
    max_tp = scaled_sigmoid(-1.0)
    tp_unit, fp_unit = np.zeros(n), np.zeros(n)
    window_id = np.full(n, OUTSIDE, dtype=np.int64)
    spans = _window_rows(timestamps, windows)
    prev_right: int | None = None
    prev_width = 0.0
    w = 0
    i = 0
    while i < n:
        if w < len(spans) and i == spans[w][0]:
            left, right = spans[w]
            width = float(right - left + 1)
            for j in range(left, right + 1):
                tp_unit[j] = scaled_sigmoid(-(right - j + 1) / width) / max_tp
                window_id[j] = w
            prev_right, prev_width, w, i = right, width, w + 1, right + 1
            continue
        if prev_right is None:
            fp_unit[i] = -1.0  # before the first window: as if far from any window
        else:
            fp_unit[i] = scaled_sigmoid(abs(prev_right - i) / (prev_width - 1.0))
        i += 1
    probation = probation_length(n)
    window_id[:probation] = PROBATION
    scorable = tuple(sorted({int(x) for x in window_id[probation:] if x >= 0}))
    return LabelledFile(name, tp_unit, fp_unit, window_id, scorable, tuple(s[0] for s in spans))


@dataclass(frozen=True)
class FileScore:
    """Raw NAB score of one file at one threshold, with NAB's row counts."""

    name: str
    score: float
    tp: int
    tn: int
    fp: int
    fn: int
    total: int


def score_file(
    labelled: LabelledFile, scores: np.ndarray, threshold: float, profile: CostProfile
) -> FileScore:
    """Score one file at a threshold (equal to NAB's `scoreDataSet` matching row)."""
    weights = labelled.weights(profile)
    scored = labelled.window_id != PROBATION
    detected = scored & (np.asarray(scores) >= threshold)
    outside = labelled.window_id == OUTSIDE
    total = float(weights[detected & outside].sum())
    for w in labelled.windows:
        hits = weights[detected & (labelled.window_id == w)]
        total += float(hits.max()) if hits.size else -profile.fn_weight
    inside = scored & ~outside
    tp = int((detected & inside).sum())
    fp = int((detected & outside).sum())
    return FileScore(
        labelled.name, total, tp, int((scored & outside).sum()) - fp, fp,
        int(inside.sum()) - tp, int(scored.sum()),
    )


def row_scores(
    labelled: LabelledFile, scores: np.ndarray, threshold: float, profile: CostProfile
) -> np.ndarray:
    """The per-row `S(t)_<profile>` column NAB writes into result files.

    Each false positive row carries its weight; each scorable window carries, on its first row,
    the weight of its earliest detection, or −fnWeight when it has none; every other row is 0.
    """
    weights = labelled.weights(profile)
    detected = (labelled.window_id != PROBATION) & (np.asarray(scores) >= threshold)
    out = np.where(detected & (labelled.window_id == OUTSIDE), weights, 0.0)
    for w in labelled.windows:
        hits = np.flatnonzero(detected & (labelled.window_id == w))
        start = labelled.window_start[w]
        out[start] = weights[hits[0]] if hits.size else -profile.fn_weight
    return out


@dataclass(frozen=True)
class ThresholdScore:
    """Corpus raw score when every row with anomaly score ≥ threshold is a detection."""

    threshold: float
    score: float


def sweep(
    files: Sequence[tuple[LabelledFile, np.ndarray]], profile: CostProfile
) -> list[ThresholdScore]:
    """Port of NAB's `Sweeper.calcScoreByThreshold` over a corpus, thresholds descending.

    Starts at threshold 1.1 (nothing detected: every scorable window is a false negative) and
    lowers the threshold through every distinct anomaly score.
    """
    all_scores, all_weights, all_windows = [], [], []
    for k, (labelled, scores) in enumerate(files):
        keep = labelled.window_id != PROBATION
        all_scores.append(np.asarray(scores, dtype=float)[keep])
        all_weights.append(labelled.weights(profile)[keep])
        ids = labelled.window_id[keep]
        all_windows.append(np.where(ids >= 0, ids + k * 100_000, OUTSIDE))
    score = np.concatenate(all_scores)
    weight = np.concatenate(all_weights)
    window = np.concatenate(all_windows)
    order = np.argsort(-score, kind="stable")
    window_best = {int(w): -profile.fn_weight for w in np.unique(window) if w >= 0}
    fp_total = 0.0
    current = 1.1
    results: list[ThresholdScore] = []
    for idx in order.tolist():
        s = float(score[idx])
        if s != current:
            results.append(ThresholdScore(current, fp_total + sum(window_best.values())))
            current = s
        w = int(window[idx])
        if w == OUTSIDE:
            fp_total += float(weight[idx])
        else:
            window_best[w] = max(window_best[w], float(weight[idx]))
    results.append(ThresholdScore(current, fp_total + sum(window_best.values())))
    return results
