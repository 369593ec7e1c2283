"""Baselines: the latest DesiredState per resource, and builders from the API and from folders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import orjson
import yaml

from schemas import ConfigChange, DesiredState, Event
from schemas.errors import RejectedError

__all__ = [
    "BaselineStore",
    "accepted_baseline",
    "baselines_from_folder",
    "desired_state",
    "parse_baseline_documents",
]

Origin = Literal["api", "git", "terraform", "accepted-drift"]
SOURCE = "novacron.baseline"
_SUFFIXES = {".yaml", ".yml", ".json"}


class BaselineStore:
    """Latest declared baseline per resource, fed from the compacted `desired` topic."""

    def __init__(self) -> None:
        self._latest: dict[str, DesiredState] = {}

    def apply(self, state: DesiredState) -> None:
        """Record a baseline; a `deleted` one withdraws the resource's baseline."""
        if state.deleted:
            self._latest.pop(state.resource_id, None)
        else:
            self._latest[state.resource_id] = state

    def get(self, resource_id: str) -> DesiredState | None:
        """The current baseline of a resource, if any."""
        return self._latest.get(resource_id)

    def __contains__(self, resource_id: object) -> bool:
        return resource_id in self._latest

    def __len__(self) -> int:
        return len(self._latest)

    def __iter__(self) -> Iterator[DesiredState]:
        return iter(list(self._latest.values()))

    def snapshot(self) -> list[dict[str, Any]]:
        """JSON-ready state (for a checkpoint)."""
        return [s.model_dump(mode="json") for s in self._latest.values()]

    def restore(self, items: list[dict[str, Any]]) -> None:
        """Replace the state with a `snapshot()`."""
        self._latest = {}
        for item in items:
            self.apply(DesiredState.model_validate(item))


def desired_state(
    resource_id: str,
    resource_type: str,
    config: dict[str, Any],
    *,
    origin: Origin = "api",
    revision: str | None = None,
    author: str = "unknown",
    deleted: bool = False,
    parent: Event | None = None,
) -> DesiredState:
    """A baseline event (continuing `parent`'s chain when given)."""
    fields: dict[str, Any] = dict(
        source=SOURCE,
        resource_id=resource_id,
        resource_type=resource_type,
        config=config,
        origin=origin,
        revision=revision,
        author=author,
        deleted=deleted,
    )
    return DesiredState.caused_by(parent, **fields) if parent else DesiredState(**fields)


def accepted_baseline(
    change: ConfigChange, *, author: str = "unknown", parent: Event | None = None
) -> DesiredState:
    """Accept a drift: the changed config becomes the new baseline (origin accepted-drift)."""
    return desired_state(
        change.resource_id,
        change.resource_type,
        change.config,
        origin="accepted-drift",
        revision=f"accepted:{change.event_id}"[:128],
        author=author,
        parent=parent or change,
    )


def parse_baseline_documents(data: Any, where: str) -> list[tuple[str, str, dict[str, Any], bool]]:
    """(resource_id, resource_type, config, deleted) from one parsed YAML/JSON document.

    Accepted shapes: a baseline `{resource_id, resource_type, config}`, a list of them, or a
    mapping with `baselines:` holding that list.
    """
    if data is None:
        return []
    if isinstance(data, dict) and "baselines" in data:
        data = data["baselines"]
    items = data if isinstance(data, list) else [data]
    out = []
    for n, item in enumerate(items):
        if not isinstance(item, dict) or not {"resource_id", "resource_type"} <= item.keys():
            raise RejectedError(
                f"{where}[{n}]: a baseline needs resource_id, resource_type, config"
            )
        config = item.get("config") or {}
        if not isinstance(config, dict):
            raise RejectedError(f"{where}[{n}]: config must be a mapping")
        out.append(
            (
                str(item["resource_id"]),
                str(item["resource_type"]),
                config,
                bool(item.get("deleted", False)),
            )
        )
    return out


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
    from agents.drift.terraform import detect_format, terraform_baselines

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
