"""Baselines: the latest DesiredState per resource, and builders from the API and from folders."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from schemas import ConfigChange, DesiredState, Event
from schemas.errors import RejectedError

__all__ = [
    "BaselineStore",
    "accepted_baseline",
    "desired_state",
    "parse_baseline_documents",
]

Origin = Literal["api", "git", "terraform", "accepted-drift"]
SOURCE = "novacron.baseline"


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
