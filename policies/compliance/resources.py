"""Typed resources to scan, read from Terraform plan/state JSON or plain resource lists."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from policies.terraform_json import (
    check_state_version,
    is_state_v4,
    plan_changes,
    resolve_unknown,
    show_state_resources,
    state_v4_instances,
)
from schemas.errors import RejectedError

__all__ = [
    "UNKNOWN",
    "Resource",
    "ScanInput",
    "is_unknown",
    "load_resources",
    "load_scan_input",
    "provider_of",
    "resources_from_document",
    "scan_input_from_document",
]

UNKNOWN: dict[str, str] = {"__unknown__": "known after apply"}
"""Stands in for a plan value computed at apply time. It is an object, so it never equals,
compares with or pattern-matches a real value; the Rego helpers (lib.rego) test for it."""

_PROVIDERS = {"aws": "aws", "google": "gcp", "azurerm": "azure", "kubernetes": "kubernetes"}


def is_unknown(value: Any) -> bool:
    """Whether a value is the unknown-until-apply marker."""
    return isinstance(value, dict) and value.get("__unknown__") == UNKNOWN["__unknown__"]


@dataclass(frozen=True, slots=True)
class Resource:
    """One resource: its address (id), Terraform-style type and attribute values."""

    address: str
    type: str
    config: dict[str, Any] = field(default_factory=dict)
    configured: frozenset[str] | None = field(default=None, compare=False)
    """Top-level attributes the Terraform configuration sets (None: not known, e.g. a state)."""
    references: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)
    """Attribute → absolute addresses of the resources its configuration expression references."""

    @property
    def provider(self) -> str:
        return provider_of(self.type)

    @property
    def base_address(self) -> str:
        """The address without the instance key (`aws_s3_bucket.b[0]` → `aws_s3_bucket.b`)."""
        return self.address.split("[", 1)[0]


@dataclass(frozen=True, slots=True)
class ScanInput:
    """Resources of one document plus where they came from (evidence for a report)."""

    resources: list[Resource]
    kind: str
    """plan, state, state-v4, resources or empty."""
    digest: str = ""
    """SHA-256 of the document bytes (the plan/state digest an auditor can match)."""


def provider_of(resource_type: str) -> str:
    """aws, gcp, azure, kubernetes or novacron, from the type's prefix."""
    return _PROVIDERS.get(resource_type.split("_", 1)[0], resource_type.split("_", 1)[0])


def _state_v4(doc: dict[str, Any]) -> Iterator[Resource]:
    for inst in state_v4_instances(doc):  # tainted instances still exist until replaced
        yield Resource(inst.address, inst.type, inst.values)


def _values(root: dict[str, Any], config: dict[str, _Configured]) -> Iterator[Resource]:
    for inst in show_state_resources(root):
        yield _with_config(Resource(inst.address, inst.type, inst.values), config)


@dataclass(frozen=True, slots=True)
class _Configured:
    keys: frozenset[str]
    references: dict[str, tuple[str, ...]]


def _configuration(doc: dict[str, Any]) -> dict[str, _Configured]:
    """Index-less address → the attributes its configuration sets and what they reference."""
    root = (doc.get("configuration") or {}).get("root_module") or {}
    out: dict[str, _Configured] = {}
    _walk_configuration(root, "", out)
    return out


def _walk_configuration(module: dict[str, Any], prefix: str, out: dict[str, _Configured]) -> None:
    for res in module.get("resources", []):
        if res.get("mode", "managed") != "managed" or "address" not in res:
            continue
        expressions = res.get("expressions") or {}
        refs = {key: tuple(prefix + r for r in (expr.get("references") or []))
                for key, expr in expressions.items() if isinstance(expr, dict)}
        out[prefix + res["address"]] = _Configured(frozenset(expressions), refs)
    for name, call in (module.get("module_calls") or {}).items():
        _walk_configuration(call.get("module") or {}, f"{prefix}module.{name}.", out)


def _with_config(resource: Resource, config: dict[str, _Configured]) -> Resource:
    found = config.get(resource.base_address)
    if found is None:
        return resource
    return Resource(resource.address, resource.type, resource.config, found.keys,
                    found.references)


def _plan(doc: dict[str, Any]) -> Iterator[Resource]:
    config = _configuration(doc)
    changes = doc.get("resource_changes")
    if changes is None:  # a plan rendered without changes: fall back to planned_values
        yield from _values((doc.get("planned_values") or {}).get("root_module") or {}, config)
        return
    for c in plan_changes(doc):
        if c.deleted:
            continue  # deleted resources leave nothing to be compliant
        after = resolve_unknown(c.after, c.after_unknown, UNKNOWN)
        yield _with_config(Resource(c.address, c.type, after), config)


def _plain(items: list[Any]) -> Iterator[Resource]:
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not item.get("resource_type"):
            raise RejectedError(f"resource #{i}: expected {{resource_id, resource_type, config}}")
        rid = item.get("resource_id") or item.get("address") or f"{item['resource_type']}.{i}"
        yield Resource(str(rid), str(item["resource_type"]), item.get("config") or {})


def _empty_show(doc: Any) -> bool:
    # `terraform show -json` of a workspace without state is just {"format_version": "1.0"}
    # (plus terraform_version on some versions): an empty estate, not bad input.
    return isinstance(doc, dict) and "format_version" in doc and set(doc) <= {
        "format_version", "terraform_version"}


def scan_input_from_document(doc: Any, digest: str = "") -> ScanInput:
    """Resources of a Terraform plan (`show -json`), state (v4 or `show -json`) or a plain list."""
    if isinstance(doc, list):
        return ScanInput(list(_plain(doc)), "resources", digest)
    if _empty_show(doc):
        return ScanInput([], "empty", digest)
    if is_state_v4(doc):
        check_state_version(doc)
        return ScanInput(list(_state_v4(doc)), "state-v4", digest)
    if isinstance(doc, dict) and ("resource_changes" in doc or "planned_values" in doc):
        return ScanInput(list(_plan(doc)), "plan", digest)
    if isinstance(doc, dict) and "values" in doc and "format_version" in doc:
        root = (doc.get("values") or {}).get("root_module") or {}
        return ScanInput(list(_values(root, {})), "state", digest)
    if isinstance(doc, dict) and isinstance(doc.get("resources"), list):
        return ScanInput(list(_plain(doc["resources"])), "resources", digest)
    raise RejectedError(
        "not a Terraform plan/state or resource list: expected `terraform show -json` output,"
        " a v4 state, or [{resource_id, resource_type, config}]"
    )


def resources_from_document(doc: Any) -> list[Resource]:
    """The resources of a document (see `scan_input_from_document`)."""
    return scan_input_from_document(doc).resources


def load_scan_input(path: Path | str) -> ScanInput:
    """Read a JSON file of resources, keeping the SHA-256 of its bytes as evidence."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise RejectedError(f"{file}: cannot read: {exc.strerror or exc}") from exc
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RejectedError(f"{file}: not valid JSON: {exc}") from exc
    return scan_input_from_document(doc, hashlib.sha256(raw).hexdigest())


def load_resources(path: Path | str) -> list[Resource]:
    """Read a JSON file of resources (see `scan_input_from_document`)."""
    return load_scan_input(path).resources
