"""Rego module facts read from the source text: package, defined rules, metadata, content hash."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from policies.types import ENFORCEMENTS, POLICY_TYPES
from schemas import PolicyVersion
from schemas.errors import RejectedError

__all__ = [
    "ENFORCEMENTS",
    "POLICY_TYPES",
    "SHIPPED_POLICY_DIR",
    "RuleShape",
    "content_hash",
    "load_directory",
    "metadata_of",
    "package_of",
    "policy_files",
    "rule_shape",
]


SHIPPED_POLICY_DIR = Path(__file__).resolve().parent / "rego"
"""The shipped Rego policies, seeded into the registry when the `policies` topic lacks them."""
_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][\w.]*)\s*$", re.MULTILINE)
_RULE = r"^\s*(?:default\s+)?{name}\b"


def content_hash(rego: str) -> str:
    """SHA-256 (hex) of the Rego source, the value a signature covers."""
    return hashlib.sha256(rego.encode("utf-8")).hexdigest()


def package_of(rego: str) -> str:
    """The module's package (`novacron.access.rbac`); RejectedError when there is none."""
    match = _PACKAGE.search(rego)
    if match is None:
        msg = "the Rego module has no `package` declaration"
        raise RejectedError(msg)
    return match.group(1)


@dataclass(frozen=True, slots=True)
class RuleShape:
    """Which contract rules a module defines (so the engine queries only those)."""

    allow: bool
    """Defines `allow` (a block/warn policy then requires it to be true)."""
    default_allow: bool
    """Declares `default allow`, so `allow` is never undefined."""
    deny: bool
    """Defines `deny contains msg if ...`."""
    approval_required: bool
    """Defines `approval_required contains msg if ...`."""


def rule_shape(rego: str) -> RuleShape:
    """Detect the contract rules from the source (static: the engine compiles what exists)."""

    def has(name: str) -> bool:
        return re.search(_RULE.format(name=name), rego, re.MULTILINE) is not None

    default = re.search(r"^\s*default\s+allow\b", rego, re.MULTILINE) is not None
    return RuleShape(has("allow"), default, has("deny"), has("approval_required"))


def metadata_of(rego: str) -> dict[str, Any]:
    """The OPA-style `# METADATA` YAML block at the top of a module (empty when absent)."""
    lines = rego.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "# METADATA")
    except StopIteration:
        return {}
    block: list[str] = []
    for line in lines[start + 1 :]:
        if not line.startswith("#"):
            break
        block.append(line[2:] if line.startswith("# ") else line[1:])
    loaded = yaml.safe_load("\n".join(block)) or {}
    return loaded if isinstance(loaded, dict) else {}


def policy_files(root: Path) -> list[Path]:
    """Every policy module under root (recursively), test modules excluded, sorted."""
    return sorted(p for p in root.rglob("*.rego") if not p.stem.endswith("_test"))


def load_directory(root: Path, *, author: str = "policies/") -> list[PolicyVersion]:
    """PolicyVersion events (version 1) for the modules under root; id = the package name."""
    events: list[PolicyVersion] = []
    for path in policy_files(root):
        rego = path.read_text(encoding="utf-8")
        meta = metadata_of(rego)
        custom = meta.get("custom") or {}
        events.append(
            PolicyVersion(
                policy_id=package_of(rego),
                name=str(meta.get("title", path.stem)),
                policy_type=str(custom.get("policy_type", "access")),
                enforcement=custom.get("enforcement", "block"),
                rego=rego,
                content_hash=content_hash(rego),
                author=author,
                source="novacron.policy-loader",
            )
        )
    return events
