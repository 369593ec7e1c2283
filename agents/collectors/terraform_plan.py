"""Terraform as a source of config changes: `plan -refresh-only` drift → ConfigChange events.

Pure: the JSON lines `terraform plan -refresh-only -json` streams (diagnostics, the addresses
that drifted) and the `resource_drift` section of `terraform show -json <plan>` (before/after
of each drifted resource) in; one ConfigChange per resource whose real attributes changed out.
Sensitive attributes (as the plan marks them) never leave: they are replaced before anything is
published. Event ids derive from the address and the change, so a drift reported on every run
lands once in the history.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from schemas import ConfigChange

__all__ = ["REDACTED", "Diagnostic", "RefreshReport", "drift_changes", "parse_stream", "redact"]

REDACTED = "(sensitive value)"
SOURCE = "novacron.collect.terraform"
_NS = uuid.UUID("8d5a3c61-7b0e-4f4c-9d7e-3f1e2b6a9c05")


@dataclass(frozen=True)
class Diagnostic:
    """One of Terraform's diagnostics, as it said it."""

    severity: str
    summary: str
    detail: str = ""
    address: str = ""

    def __str__(self) -> str:
        where = f" ({self.address})" if self.address else ""
        detail = f": {self.detail.strip()}" if self.detail.strip() else ""
        return f"{self.severity}{where}: {self.summary}{detail}"


@dataclass
class RefreshReport:
    """What the streamed plan said: diagnostics and the resources that drifted."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    drifted: list[str] = field(default_factory=list)
    unparsed: list[str] = field(default_factory=list)
    """Lines that were not JSON (Terraform printed them for a human: kept for the error)."""

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


def parse_stream(lines: Iterable[str | bytes]) -> RefreshReport:
    """Read `terraform plan -json` output line by line."""
    report = RefreshReport()
    for line in lines:
        if not line.strip():
            continue
        try:
            msg = orjson.loads(line)
        except orjson.JSONDecodeError:
            report.unparsed.append(line.decode() if isinstance(line, bytes) else str(line))
            continue
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "diagnostic":
            d = msg.get("diagnostic") or {}
            report.diagnostics.append(Diagnostic(str(d.get("severity", "error")),
                                                 str(d.get("summary", "")),
                                                 str(d.get("detail") or ""),
                                                 str(d.get("address") or "")))
        elif kind == "resource_drift":
            addr = ((msg.get("change") or {}).get("resource") or {}).get("addr")
            if addr:
                report.drifted.append(str(addr))
    return report


def redact(value: Any, sensitive: Any) -> Any:
    """`value` with every part the plan marks sensitive (True, or nested marks) replaced."""
    if sensitive is True:
        return REDACTED if value is not None else None
    if isinstance(value, dict) and isinstance(sensitive, dict):
        return {k: redact(v, sensitive.get(k, False)) for k, v in value.items()}
    if isinstance(value, list) and isinstance(sensitive, list):
        return [redact(v, sensitive[i] if i < len(sensitive) else False)
                for i, v in enumerate(value)]
    return value


def _provider(name: str) -> str:
    """`registry.terraform.io/hashicorp/aws` → `aws`."""
    return name.rsplit("/", 1)[-1][:64] or "terraform"


def _event_id(address: str, before: Any, after: Any) -> str:
    digest = hashlib.sha256(orjson.dumps([before, after], option=orjson.OPT_SORT_KEYS))
    return str(uuid.uuid5(_NS, f"{address}/{digest.hexdigest()}"))


def drift_changes(shown: dict[str, Any], *, actor: str = "terraform-refresh") -> list[ConfigChange]:
    """One ConfigChange per drifted managed resource of `terraform show -json <plan>`."""
    out = []
    for item in shown.get("resource_drift") or []:
        if item.get("mode", "managed") != "managed":
            continue
        change = item.get("change") or {}
        before = redact(change.get("before"), change.get("before_sensitive", False))
        after = redact(change.get("after"), change.get("after_sensitive", False))
        if before == after:
            continue  # only sensitive parts moved: nothing that may be shown changed
        gone = "delete" in (change.get("actions") or []) or after is None
        address = str(item["address"])
        out.append(ConfigChange(
            event_id=_event_id(address, before, after), source=SOURCE, resource_id=address,
            resource_type=str(item.get("type") or "terraform_resource")[:128],
            provider=_provider(str(item.get("provider_name") or "")), op="delete" if gone else
            "update", change_source="terraform", actor=actor[:256],
            config=after if isinstance(after, dict) else {},
            before=before if isinstance(before, dict) else None))
    return out
