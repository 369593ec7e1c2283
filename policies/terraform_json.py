"""The one Terraform JSON reader: state v4, `terraform show -json` state and plan.

Compliance scans (`policies/compliance/resources.py`) and drift baselines
(`agents/drift/terraform.py`) both read these documents; each keeps only its own policy (drift
skips tainted instances and drops values unknown until apply; compliance marks them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from schemas.errors import RejectedError

__all__ = [
    "DELETE_ACTIONS",
    "Change",
    "Instance",
    "check_state_version",
    "index_suffix",
    "is_state_v4",
    "module_resources",
    "plan_changes",
    "resolve_unknown",
    "show_state_resources",
    "state_v4_instances",
]

DELETE_ACTIONS = ({"delete"}, {"forget"})
"""Plan actions that leave no resource behind."""
_DROP = object()


@dataclass(frozen=True, slots=True)
class Instance:
    """One managed resource instance: its address, type and attribute values."""

    address: str
    type: str
    values: dict[str, Any]
    tainted: bool = False
    """A v4 state instance scheduled for replacement."""


@dataclass(frozen=True, slots=True)
class Change:
    """One managed resource change of a plan."""

    address: str
    type: str
    after: dict[str, Any]
    after_unknown: Any
    deleted: bool


def index_suffix(index: Any) -> str:
    """`[0]`, `["key"]` or nothing, for an instance's index key."""
    if index is None:
        return ""
    return f"[{index}]" if isinstance(index, int) else f"[{json.dumps(index)}]"


def is_state_v4(doc: Any) -> bool:
    """Whether this looks like a raw state file (any version; see `check_state_version`)."""
    return isinstance(doc, dict) and "lineage" in doc and "resources" in doc


def check_state_version(doc: dict[str, Any]) -> None:
    """RejectedError unless the state file is format version 4."""
    if doc.get("version") != 4:
        raise RejectedError(
            f"state format version {doc.get('version')} is not supported (only 4);"
            " convert it with `terraform show -json`"
        )


def state_v4_instances(doc: dict[str, Any]) -> Iterator[Instance]:
    """Managed instances of a v4 state (data sources are read, not declared)."""
    for res in doc.get("resources", []):
        if res.get("mode", "managed") != "managed":
            continue
        module = res.get("module")
        base = f"{module + '.' if module else ''}{res['type']}.{res['name']}"
        for inst in res.get("instances", []):
            yield Instance(base + index_suffix(inst.get("index_key")), res["type"],
                           inst.get("attributes") or {}, inst.get("status") == "tainted")


def module_resources(module: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Resources of a `show -json` module and its child modules, depth first."""
    yield from module.get("resources", [])
    for child in module.get("child_modules", []):
        yield from module_resources(child)


def show_state_resources(root: dict[str, Any]) -> Iterator[Instance]:
    """Managed resources of a `show -json` root module (`values.root_module`)."""
    for res in module_resources(root):
        if res.get("mode", "managed") == "managed":
            yield Instance(res["address"], res["type"], res.get("values") or {})


def plan_changes(doc: dict[str, Any]) -> Iterator[Change]:
    """Managed resource changes of a `show -json` plan."""
    for rc in doc.get("resource_changes") or []:
        if rc.get("mode", "managed") != "managed":
            continue
        change = rc.get("change") or {}
        deleted = set(change.get("actions") or []) in DELETE_ACTIONS
        yield Change(rc["address"], rc["type"], change.get("after") or {},
                     change.get("after_unknown") or {}, deleted)


def resolve_unknown(value: Any, unknown: Any, marker: Any = _DROP) -> Any:
    """Values unknown until apply (`after_unknown` marks them true) replaced by a copy of
    `marker`, or dropped when no marker is given (None inside lists)."""
    if unknown is True:
        return None if marker is _DROP else _copy(marker)
    if isinstance(value, dict) and isinstance(unknown, dict):
        out = {k: resolve_unknown(v, unknown.get(k), marker) for k, v in value.items()}
        out.update({k: resolve_unknown(None, True, marker) for k, u in unknown.items()
                    if u is True and k not in value})
        return {k: v for k, v in out.items() if v is not None} if marker is _DROP else out
    if isinstance(value, list) and isinstance(unknown, list):
        return [resolve_unknown(v, unknown[i] if i < len(unknown) else None, marker)
                for i, v in enumerate(value)]
    return value


def _copy(marker: Any) -> Any:
    return dict(marker) if isinstance(marker, dict) else marker
