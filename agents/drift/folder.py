"""Baselines from a folder: YAML/JSON baseline documents and Terraform state/plan JSON files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import yaml

from agents.drift.baseline import Origin, desired_state, parse_baseline_documents
from agents.drift.terraform import detect_format, terraform_baselines
from schemas import DesiredState
from schemas.errors import RejectedError

__all__ = ["baselines_from_folder"]

_SUFFIXES = {".yaml", ".yml", ".json"}


def _load_documents(file: Path) -> list[Any]:
    text = file.read_text(encoding="utf-8")
    try:
        if file.suffix == ".json":
            return [orjson.loads(text)]
        return list(yaml.safe_load_all(text))
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise RejectedError(f"{file}: not valid {file.suffix[1:].upper()}: {exc}") from exc


def baselines_from_folder(
    folder: Path, *, origin: Origin = "git", revision: str | None = None, author: str = "unknown"
) -> list[DesiredState]:
    """Every baseline in the YAML/JSON files under a folder (sorted paths, `.git` skipped).

    Terraform state/plan JSON files found in the folder are imported as well.
    """
    events: list[DesiredState] = []
    seen: dict[str, Path] = {}
    for file in sorted(p for p in folder.rglob("*") if p.suffix in _SUFFIXES and p.is_file()):
        if ".git" in file.relative_to(folder).parts:
            continue
        for doc in _load_documents(file):
            if isinstance(doc, dict) and detect_format(doc) is not None:
                found = terraform_baselines(doc, author=author, revision=revision)
                events.extend(found)
                continue
            for rid, rtype, config, deleted in parse_baseline_documents(doc, str(file)):
                if rid in seen:
                    raise RejectedError(f"{file}: baseline {rid!r} is also declared in {seen[rid]}")
                seen[rid] = file
                events.append(
                    desired_state(
                        rid,
                        rtype,
                        config,
                        origin=origin,
                        revision=revision,
                        author=author,
                        deleted=deleted,
                    )
                )
    return events
