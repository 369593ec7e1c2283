"""A NAB data folder as a corpus: load series and windows, run a detector, sweep and normalise."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

import numpy as np

from models.nab.scorer import (
    CostProfile,
    FileScore,
    LabelledFile,
    label_file,
    load_profiles,
    score_file,
    sweep,
)
from schemas.errors import NonRetryableError

__all__ = [
    "CorpusResult",
    "NabFile",
    "ProfileResult",
    "StreamDetector",
    "evaluate_corpus",
    "load_corpus",
    "normalise",
    "run_detector",
]


@dataclass(frozen=True)
class NabFile:
    """One NAB series with its labels."""

    name: str
    """Path relative to `data/` (the key of the label files)."""
    timestamps: list[str]
    values: np.ndarray
    labelled: LabelledFile


def _read_series(path: Path) -> tuple[list[str], np.ndarray]:
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r["timestamp"] for r in rows], np.array([float(r["value"]) for r in rows])


def load_corpus(root: Path, only: str | None = None) -> list[NabFile]:
    """Every `data/<category>/<file>.csv` with its windows; `only` filters on a substring."""
    windows_path = root / "labels" / "combined_windows.json"
    if not windows_path.is_file():
        raise NonRetryableError(f"{root} is not a NAB folder: {windows_path} is missing")
    windows = json.loads(windows_path.read_text())
    files = []
    for path in sorted((root / "data").glob("*/*.csv")):
        name = f"{path.parent.name}/{path.name}"
        if only and only not in name:
            continue
        timestamps, values = _read_series(path)
        files.append(NabFile(name, timestamps, values, label_file(name, timestamps, windows[name])))
    return files


class StreamDetector(Protocol):
    """What the harness needs from a detector: one row at a time, score in [0, 1]."""

    def score_learn(self, t: datetime, value: float) -> float:
        """Score the row from the past only, then learn it."""
        ...


def run_detector(
    file: NabFile, factory: Callable[[], StreamDetector]
) -> np.ndarray:
    """Stream a file through a fresh detector (predict then learn, no look-ahead)."""
    detector = factory()
    out = np.empty(len(file.values))
    for i, (ts, value) in enumerate(zip(file.timestamps, file.values, strict=True)):
        out[i] = detector.score_learn(datetime.fromisoformat(ts), float(value))
    return out


@dataclass(frozen=True)
class ProfileResult:
    """Corpus result of one profile at its optimised threshold."""

    profile: str
    threshold: float
    raw: float
    null: float
    perfect: float
    normalised: float
    files: list[FileScore] = field(default_factory=list)


@dataclass(frozen=True)
class CorpusResult:
    """Results of all profiles."""

    profiles: dict[str, ProfileResult]

    def as_dict(self) -> dict[str, object]:
        return {
            name: {
                "threshold": r.threshold, "raw": r.raw, "null": r.null,
                "perfect": r.perfect, "normalised": r.normalised,
                "files": {f.name: f.score for f in r.files},
            }
            for name, r in self.profiles.items()
        }


def normalise(raw: float, n_windows: int, profile: CostProfile) -> tuple[float, float, float]:
    """NAB normalisation against the null (never fires) and perfect detectors."""
    null = -profile.fn_weight * n_windows
    perfect = profile.tp_weight * n_windows
    return 100.0 * (raw - null) / (perfect - null), null, perfect


def evaluate_corpus(
    scored: list[tuple[LabelledFile, np.ndarray]], profiles: dict[str, CostProfile]
) -> CorpusResult:
    """Sweep one corpus-wide threshold per profile, then score each file at it and normalise."""
    n_windows = sum(len(lf.windows) for lf, _ in scored)
    out = {}
    for name, profile in profiles.items():
        # NAB sorts by score (stable) after a descending-threshold sweep: ties keep the highest
        best = max(sweep(scored, profile), key=lambda r: r.score)
        files = [score_file(lf, s, best.threshold, profile) for lf, s in scored]
        norm, null, perfect = normalise(best.score, n_windows, profile)
        out[name] = ProfileResult(name, best.threshold, best.score, null, perfect, norm, files)
    return CorpusResult(out)


def profiles_of(root: Path) -> dict[str, CostProfile]:
    """The cost profiles of a NAB folder."""
    return load_profiles(root / "config" / "profiles.json")


def iter_scored(
    files: list[NabFile], factory: Callable[[], StreamDetector]
) -> Iterator[tuple[LabelledFile, np.ndarray]]:
    """Run the detector over each file (a generator so a caller can show progress)."""
    for file in files:
        yield file.labelled, run_detector(file, factory)
