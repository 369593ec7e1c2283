"""Baselines from Terraform JSON: state format v4 and `terraform show -json` (state and plan)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import orjson

from agents.drift.baseline import desired_state
from schemas import DesiredState
from schemas.errors import RejectedError

__all__ = [
    "TerraformResource",
    "detect_format",
    "load_terraform",
    "terraform_baselines",
    "terraform_resources",
]

Format = Literal["state-v4", "show-state", "show-plan"]
TerraformResource = tuple[str, str, dict[str, Any], bool]
"""(address, type, values, deleted)."""
_DELETE_ACTIONS = ({"delete"}, {"forget"})


def detect_format(doc: dict[str, Any]) -> Format | None:
    """Which Terraform JSON this is, or None when it is not Terraform output."""
    if "format_version" in doc and ("resource_changes" in doc or "planned_values" in doc):
        return "show-plan"
    if "format_version" in doc and "terraform_version" in doc:
        return "show-state"
    if "lineage" in doc and "resources" in doc and "version" in doc:
        if doc["version"] != 4:
            raise RejectedError(
                f"state format version {doc['version']} is not supported (only 4);"
                " convert it with `terraform show -json`"
            )
        return "state-v4"
    return None


def _index_suffix(index: Any) -> str:
    if index is None:
        return ""
    return f"[{index}]" if isinstance(index, int) else f"[{json.dumps(index)}]"


def _state_v4(doc: dict[str, Any]) -> Iterator[TerraformResource]:
    for res in doc.get("resources", []):
        if res.get("mode", "managed") != "managed":
            continue  # data sources are read, not declared
        module = res.get("module")
        base = f"{module + '.' if module else ''}{res['type']}.{res['name']}"
        for inst in res.get("instances", []):
            if inst.get("status") == "tainted":
                continue  # scheduled for replacement: not a trustworthy baseline
            address = base + _index_suffix(inst.get("index_key"))
            yield address, res["type"], inst.get("attributes") or {}, False


def _module_resources(module: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from module.get("resources", [])
    for child in module.get("child_modules", []):
        yield from _module_resources(child)


def _show_state(doc: dict[str, Any]) -> Iterator[TerraformResource]:
    root = (doc.get("values") or {}).get("root_module") or {}
    for res in _module_resources(root):
        if res.get("mode", "managed") == "managed":
            yield res["address"], res["type"], res.get("values") or {}, False


def _strip_unknown(value: Any, unknown: Any) -> Any:
    """Drop values that are unknown until apply (`after_unknown` marks them true)."""
    if unknown is True:
        return None
    if isinstance(value, dict) and isinstance(unknown, dict):
        out = {k: _strip_unknown(v, unknown.get(k)) for k, v in value.items()}
        extra = {k: None for k, u in unknown.items() if u is True and k not in value}
        return {k: v for k, v in (out | extra).items() if v is not None}
    if isinstance(value, list) and isinstance(unknown, list):
        return [
            _strip_unknown(v, unknown[i] if i < len(unknown) else None) for i, v in enumerate(value)
        ]
    return value


def _show_plan(doc: dict[str, Any]) -> Iterator[TerraformResource]:
    for rc in doc.get("resource_changes", []):
        if rc.get("mode", "managed") != "managed":
            continue
        change = rc.get("change") or {}
        actions = set(change.get("actions") or [])
        if actions in _DELETE_ACTIONS:
            yield rc["address"], rc["type"], {}, True
            continue
        after = _strip_unknown(change.get("after") or {}, change.get("after_unknown") or {})
        yield rc["address"], rc["type"], after, False


def terraform_resources(doc: dict[str, Any]) -> list[TerraformResource]:
    """Managed resources (including child modules) keyed by their Terraform address."""
    fmt = detect_format(doc)
    if fmt is None:
        raise RejectedError(
            "not Terraform JSON: expected a v4 state or `terraform show -json` output"
        )
    reader = {"state-v4": _state_v4, "show-state": _show_state, "show-plan": _show_plan}[fmt]
    return list(reader(doc))


def _revision(doc: dict[str, Any]) -> str:
    # A v4 state has a lineage and a serial; `show -json` output has neither, so use a digest.
    if detect_format(doc) == "state-v4":
        return f"{doc['lineage']}#{doc.get('serial', 0)}"[:128]
    digest = hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    return f"tf-{doc.get('terraform_version', '?')}:{digest}"[:128]


def terraform_baselines(
    doc: dict[str, Any], *, author: str = "terraform", revision: str | None = None
) -> list[DesiredState]:
    """DesiredState events (origin terraform) for every managed resource in the document."""
    rev = revision or _revision(doc)
    return [
        desired_state(
            address, rtype, values, origin="terraform", revision=rev, author=author, deleted=deleted
        )
        for address, rtype, values, deleted in terraform_resources(doc)
    ]


def load_terraform(
    path: Path | str, *, author: str = "terraform", revision: str | None = None
) -> list[DesiredState]:
    """Read a Terraform JSON file and build its baselines."""
    file = Path(path)
    try:
        doc = orjson.loads(file.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise RejectedError(f"{file}: cannot read Terraform JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise RejectedError(f"{file}: expected a JSON object")
    return terraform_baselines(doc, author=author, revision=revision)
