"""Typed resources to scan, read from Terraform plan/state JSON or plain resource lists."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from schemas.errors import RejectedError

__all__ = ["UNKNOWN", "Resource", "load_resources", "provider_of", "resources_from_document"]

UNKNOWN = "(known after apply)"
"""Stands in for plan values computed at apply time: present, but not inspectable."""

_PROVIDERS = {"aws": "aws", "google": "gcp", "azurerm": "azure", "kubernetes": "kubernetes"}
_DELETE_ACTIONS = (["delete"], ["forget"])


@dataclass(frozen=True, slots=True)
class Resource:
    """One resource: its address (id), Terraform-style type and attribute values."""

    address: str
    type: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def provider(self) -> str:
        return provider_of(self.type)


def provider_of(resource_type: str) -> str:
    """aws, gcp, azure, kubernetes or novacron, from the type's prefix."""
    return _PROVIDERS.get(resource_type.split("_", 1)[0], resource_type.split("_", 1)[0])


def _index(key: Any) -> str:
    if key is None:
        return ""
    return f"[{key}]" if isinstance(key, int) else f"[{json.dumps(key)}]"


def _state_v4(doc: dict[str, Any]) -> Iterator[Resource]:
    for res in doc.get("resources", []):
        if res.get("mode", "managed") != "managed":
            continue  # data sources are read, not owned
        module = res.get("module")
        base = f"{module + '.' if module else ''}{res['type']}.{res['name']}"
        for inst in res.get("instances", []):
            yield Resource(base + _index(inst.get("index_key")), res["type"],
                           inst.get("attributes") or {})


def _module(module: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from module.get("resources", [])
    for child in module.get("child_modules", []):
        yield from _module(child)


def _values(root: dict[str, Any]) -> Iterator[Resource]:
    for res in _module(root):
        if res.get("mode", "managed") == "managed":
            yield Resource(res["address"], res["type"], res.get("values") or {})


def _mark_unknown(value: Any, unknown: Any) -> Any:
    """Replace values unknown until apply with UNKNOWN, so presence checks still see them."""
    if unknown is True:
        return UNKNOWN
    if isinstance(value, dict) and isinstance(unknown, dict):
        out = {k: _mark_unknown(v, unknown.get(k)) for k, v in value.items()}
        out.update({k: UNKNOWN for k, u in unknown.items() if u is True and k not in value})
        return out
    if isinstance(value, list) and isinstance(unknown, list):
        return [_mark_unknown(v, unknown[i] if i < len(unknown) else None)
                for i, v in enumerate(value)]
    return value


def _plan(doc: dict[str, Any]) -> Iterator[Resource]:
    changes = doc.get("resource_changes")
    if changes is None:  # a plan rendered without changes: fall back to planned_values
        yield from _values((doc.get("planned_values") or {}).get("root_module") or {})
        return
    for rc in changes:
        change = rc.get("change") or {}
        if rc.get("mode", "managed") != "managed" or change.get("actions") in _DELETE_ACTIONS:
            continue  # deleted resources leave nothing to be compliant
        after = _mark_unknown(change.get("after") or {}, change.get("after_unknown") or {})
        yield Resource(rc["address"], rc["type"], after)


def _plain(items: list[Any]) -> Iterator[Resource]:
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not item.get("resource_type"):
            raise RejectedError(f"resource #{i}: expected {{resource_id, resource_type, config}}")
        rid = item.get("resource_id") or item.get("address") or f"{item['resource_type']}.{i}"
        yield Resource(str(rid), str(item["resource_type"]), item.get("config") or {})


def resources_from_document(doc: Any) -> list[Resource]:
    """Resources of a Terraform plan (`show -json`), state (v4 or `show -json`) or a plain list."""
    if isinstance(doc, list):
        return list(_plain(doc))
    if isinstance(doc, dict) and "resources" in doc and "lineage" in doc:
        if doc.get("version") != 4:
            raise RejectedError(f"state format version {doc.get('version')} is not supported (4)")
        return list(_state_v4(doc))
    if isinstance(doc, dict) and ("resource_changes" in doc or "planned_values" in doc):
        return list(_plan(doc))
    if isinstance(doc, dict) and "values" in doc and "format_version" in doc:
        return list(_values((doc.get("values") or {}).get("root_module") or {}))
    if isinstance(doc, dict) and isinstance(doc.get("resources"), list):
        return list(_plain(doc["resources"]))
    raise RejectedError(
        "not a Terraform plan/state or resource list: expected `terraform show -json` output,"
        " a v4 state, or [{resource_id, resource_type, config}]"
    )


def load_resources(path: Path | str) -> list[Resource]:
    """Read a JSON file of resources (see `resources_from_document`)."""
    file = Path(path)
    try:
        doc = orjson.loads(file.read_bytes())
    except OSError as exc:
        raise RejectedError(f"{file}: cannot read: {exc.strerror or exc}") from exc
    except orjson.JSONDecodeError as exc:
        raise RejectedError(f"{file}: not valid JSON: {exc}") from exc
    return resources_from_document(doc)
