"""Baselines from Terraform JSON: state format v4 and `terraform show -json` (state and plan)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import orjson

from agents.drift.baseline import desired_state
from policies.terraform_json import (
    check_state_version,
    is_state_v4,
    plan_changes,
    resolve_unknown,
    show_state_resources,
    state_v4_instances,
)
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


def detect_format(doc: dict[str, Any]) -> Format | None:
    """Which Terraform JSON this is, or None when it is not Terraform output."""
    if "format_version" in doc and ("resource_changes" in doc or "planned_values" in doc):
        return "show-plan"
    if "format_version" in doc and "terraform_version" in doc:
        return "show-state"
    if is_state_v4(doc) and "version" in doc:
        check_state_version(doc)
        return "state-v4"
    return None


def _state_v4(doc: dict[str, Any]) -> Iterator[TerraformResource]:
    for inst in state_v4_instances(doc):
        if not inst.tainted:  # scheduled for replacement: not a trustworthy baseline
            yield inst.address, inst.type, inst.values, False


def _show_state(doc: dict[str, Any]) -> Iterator[TerraformResource]:
    for inst in show_state_resources((doc.get("values") or {}).get("root_module") or {}):
        yield inst.address, inst.type, inst.values, False


def _show_plan(doc: dict[str, Any]) -> Iterator[TerraformResource]:
    for c in plan_changes(doc):
        # values unknown until apply are dropped: a baseline holds only what is declared
        after = {} if c.deleted else resolve_unknown(c.after, c.after_unknown)
        yield c.address, c.type, after, c.deleted


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
