"""The control library: YAML controls paired with Rego packages of the same file name."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from policies.compliance.model import Control, normalise_standard
from schemas.errors import RejectedError

__all__ = [
    "CONTROLS_DIR",
    "PACKAGE_PREFIX",
    "REGO_DIR",
    "ControlLibrary",
    "load_library",
    "standard_or_all",
]

CONTROLS_DIR = Path(__file__).parent / "controls"
REGO_DIR = Path(__file__).parent / "rego"
PACKAGE_PREFIX = "novacron.compliance"
_PACKAGE = re.compile(r"^package\s+([\w.]+)", re.MULTILINE)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader is ~10x faster
_DENY_ID = re.compile(r'^deny\s+contains\s+"([^"]+)"', re.MULTILINE)


class ControlLibrary:
    """Controls by id and by resource type, plus the Rego modules that implement them."""

    def __init__(self, controls: Iterable[Control], modules: Mapping[str, str]) -> None:
        self.controls: dict[str, Control] = {}
        for c in controls:
            if c.id in self.controls:
                raise RejectedError(f"duplicate control id {c.id!r}")
            self.controls[c.id] = c
        self.modules = dict(modules)
        self.by_type: dict[str, list[Control]] = {}
        for c in self.controls.values():
            for t in c.resource_types:
                self.by_type.setdefault(t, []).append(c)

    def __len__(self) -> int:
        return len(self.controls)

    def get(self, control_id: str) -> Control:
        try:
            return self.controls[control_id]
        except KeyError:
            raise RejectedError(f"unknown control {control_id!r}") from None

    def for_type(self, resource_type: str, standard: str | None = None) -> list[Control]:
        """Controls that apply to a resource type (and map to `standard`, when given)."""
        return [c for c in self.by_type.get(resource_type, []) if c.maps_to(standard)]

    def for_standard(self, standard: str | None) -> list[Control]:
        return [c for c in self.controls.values() if c.maps_to(standard)]

    def types(self) -> list[str]:
        return sorted(self.by_type)

    def packages_for(self, resource_type: str) -> list[str]:
        """Rego packages with at least one control for the type (sorted, no duplicates)."""
        return sorted({c.rule for c in self.by_type.get(resource_type, [])})


def _read_yaml(path: Path) -> list[dict[str, Any]]:
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506 (safe)
    except (OSError, yaml.YAMLError) as exc:
        raise RejectedError(f"{path}: cannot read control YAML: {exc}") from exc
    items = doc.get("controls") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise RejectedError(f"{path}: expected a mapping with a `controls:` list")
    return items


def _controls_of(path: Path, package: str) -> list[Control]:
    out = []
    for i, item in enumerate(_read_yaml(path)):
        try:
            out.append(Control.model_validate({**item, "rule": package}))
        except (ValidationError, RejectedError, TypeError) as exc:
            where = item.get("id", f"#{i}") if isinstance(item, dict) else f"#{i}"
            raise RejectedError(f"{path.name}: control {where}: {exc}") from exc
    return out


def _check_pairing(path: Path, source: str, package: str, controls: list[Control]) -> None:
    found = _PACKAGE.search(source)
    if found is None or found.group(1) != package:
        raise RejectedError(f"{path.name}: expected `package {package}`")
    in_rego = set(_DENY_ID.findall(source))
    declared = {c.id for c in controls}
    # A control without a rule would always pass; a rule without a control has no metadata.
    if declared - in_rego:
        missing = sorted(declared - in_rego)
        raise RejectedError(f"{path.name}: no `deny contains` rule for {missing}")
    if in_rego - declared:
        raise RejectedError(f"{path.name}: rules without a control: {sorted(in_rego - declared)}")


def load_library(
    controls_dir: Path | str | None = None, rego_dir: Path | str | None = None
) -> ControlLibrary:
    """Load `controls/<name>.yaml` with `rego/<name>.rego` (package `novacron.compliance.<name>`).

    Rego files without a YAML twin (helper packages such as `lib.rego`) are loaded as-is.
    """
    cdir = Path(controls_dir) if controls_dir is not None else CONTROLS_DIR
    rdir = Path(rego_dir) if rego_dir is not None else REGO_DIR
    modules = {p.name: p.read_text(encoding="utf-8") for p in sorted(rdir.glob("*.rego"))}
    controls: list[Control] = []
    for path in sorted(cdir.glob("*.yaml")):
        package = f"{PACKAGE_PREFIX}.{path.stem}"
        source = modules.get(f"{path.stem}.rego")
        if source is None:
            raise RejectedError(f"{path.name}: missing Rego twin {rdir / (path.stem + '.rego')}")
        found = _controls_of(path, package)
        _check_pairing(path, source, package, found)
        controls.extend(found)
    if not controls:
        raise RejectedError(f"no controls found under {cdir}")
    return ControlLibrary(controls, modules)


def standard_or_all(name: str | None) -> str | None:
    """Normalise an optional standard name (`all` or None means every standard)."""
    if name is None or name.strip().lower() in ("", "all"):
        return None
    return normalise_standard(name)
