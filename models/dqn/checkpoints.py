"""Versioned model checkpoints (numpy weights + JSON metadata), a current pointer, rollback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from schemas.errors import RejectedError

__all__ = ["CheckpointMeta", "CheckpointStore"]


class CheckpointMeta(BaseModel):
    """What a checkpoint was trained on and how well it did."""

    version: str
    """Version id: v0001, v0002, …"""
    created_at: str = ""
    """ISO time of creation (UTC)."""
    episodes: int = 0
    """Training episodes."""
    env_steps: int = 0
    """Environment steps seen."""
    mean_reward: float | None = None
    """Mean episode reward over the last episodes."""
    traces: list[str] = Field(default_factory=list)
    """Demand traces trained on."""
    data_range: dict[str, str] = Field(default_factory=dict)
    """First and last simulated time trained on."""
    config: dict[str, Any] = Field(default_factory=dict)
    """Hyper-parameters, feature and safety settings."""
    parent: str | None = None
    """Version this one was fine-tuned from."""


class CheckpointStore:
    """A folder of `vNNNN/weights.npz` + `meta.json`, and `CURRENT` naming the active version."""

    def __init__(self, root: str | Path = "var/models/dqn") -> None:
        self.root = Path(root)

    def save(self, weights: dict[str, np.ndarray], meta: dict[str, Any]) -> CheckpointMeta:
        """Write a new version and make it current."""
        self.root.mkdir(parents=True, exist_ok=True)
        version = f"v{len(self._versions()) + 1:04d}"
        folder = self.root / version
        folder.mkdir()
        np.savez(folder / "weights.npz", **weights)  # type: ignore[arg-type]
        record = CheckpointMeta(version=version, **meta)
        (folder / "meta.json").write_text(record.model_dump_json(indent=2))
        self._set_current(version)
        return record

    def list_versions(self) -> list[CheckpointMeta]:
        return [self.meta(v) for v in self._versions()]

    def meta(self, version: str) -> CheckpointMeta:
        path = self.root / version / "meta.json"
        if not path.is_file():
            raise RejectedError(f"no model version {version!r} under {self.root}")
        return CheckpointMeta.model_validate_json(path.read_text())

    def current(self) -> str | None:
        pointer = self.root / "CURRENT"
        return pointer.read_text().strip() if pointer.is_file() else None

    def weights_path(self, version: str | None = None) -> Path:
        """Path of a version's weights (the current one by default)."""
        version = version or self.current()
        if version is None:
            raise RejectedError(f"no trained model under {self.root}: run `novacron train dqn`")
        self.meta(version)
        return self.root / version / "weights.npz"

    def load(self, version: str | None = None) -> dict[str, np.ndarray]:
        with np.load(self.weights_path(version)) as data:
            return {k: data[k] for k in data.files}

    def rollback(self, version: str | None = None) -> str:
        """Make `version` current, or the one before the current version when None."""
        versions = self._versions()
        if version is None:
            current = self.current()
            if current not in versions or versions.index(current) == 0:
                raise RejectedError("nothing to roll back to: the current version is the first")
            version = versions[versions.index(current) - 1]
        self.meta(version)
        self._set_current(version)
        return version

    def _versions(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name.startswith("v"))

    def _set_current(self, version: str) -> None:
        # Write then rename, so a reader never sees a half-written pointer.
        tmp = self.root / "CURRENT.tmp"
        tmp.write_text(version + "\n")
        os.replace(tmp, self.root / "CURRENT")
