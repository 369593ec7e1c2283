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
    "expand_variants",
    "load_library",
    "standard_or_all",
]

CONTROLS_DIR = Path(__file__).parent / "controls"
REGO_DIR = Path(__file__).parent / "rego"
PACKAGE_PREFIX = "novacron.compliance"
_PACKAGE = re.compile(r"^package\s+([\w.]+)", re.MULTILINE)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader is ~10x faster
_DENY_ID = re.compile(r'^deny\s+contains\s+"([^"]+)"', re.MULTILINE)
_VARIANTS = re.compile(r'lib\.variants\("([^"]+)"\)')
# A bare comparison operator; regopy and OPA disagree on mixed-type comparisons, so control
# packages compare through lib.below/at_most/above/at_least, which check both are numbers.
_COMPARISON = re.compile(r"\s(<|<=|>|>=)\s")
_FUNCTION = re.compile(r"^([a-z_][a-z0-9_]*)\(([^)]*)\)\s*(?::=|if\b|\{)", re.MULTILINE)


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

    def manual(self, standard: str | None = None) -> list[Control]:
        """Manual (attested) controls of a standard."""
        return [c for c in self.for_standard(standard) if c.kind == "manual"]

    def types(self) -> list[str]:
        return sorted(self.by_type)

    def packages_for(self, resource_type: str) -> list[str]:
        """Rego packages with at least one control for the type (sorted, no duplicates)."""
        return sorted({c.rule for c in self.by_type.get(resource_type, [])})

    def params_for(self, resource_type: str) -> dict[str, dict[str, dict[str, Any]]]:
        """`input.params` for a type: base control id → {variant id: parameter values}."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for c in self.by_type.get(resource_type, []):
            if c.params:
                out.setdefault(c.base_id, {})[c.id] = c.params
        return out


def _read_yaml(path: Path) -> list[dict[str, Any]]:
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506 (safe)
    except (OSError, yaml.YAMLError) as exc:
        raise RejectedError(f"{path}: cannot read control YAML: {exc}") from exc
    items = doc.get("controls") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise RejectedError(f"{path}: expected a mapping with a `controls:` list")
    return items


def expand_variants(control: Control, overrides: Mapping[str, Any] | None = None) -> list[Control]:
    """One control per distinct parameter value set: the default set keeps the id and every
    framework without its own values; each framework with its own values gets `<id>-<std>`.

    `overrides` (deployment configuration) replace a parameter for every framework.
    """
    if not control.parameters:
        return [control]
    table = {name: ({"default": overrides[name]} if overrides and name in overrides else values)
             for name, values in control.parameters.items()}
    groups: dict[str, list[str]] = {}
    for std in control.frameworks:
        values = {n: v.get(std, v["default"]) for n, v in table.items()}
        groups.setdefault(repr(sorted(values.items())), []).append(std)
    default = repr(sorted({n: v["default"] for n, v in table.items()}.items()))
    out = []
    for key, stds in sorted(groups.items(), key=lambda kv: kv[0] != default):
        values = {n: v.get(stds[0], v["default"]) for n, v in table.items()}
        vid = control.id if key == default else f"{control.id}-{stds[0]}"
        out.append(control.model_copy(update={
            "id": vid, "params": values, "variant_of": control.id,
            "title": control.title.format(**values),
            "frameworks": {s: control.frameworks[s] for s in stds},
        }))
    if not any(c.id == control.id for c in out):  # every framework overrides: keep the base id
        out[0] = out[0].model_copy(update={"id": control.id})
    return out


def _controls_of(path: Path, package: str, overrides: Mapping[str, Mapping[str, Any]]
                 ) -> list[Control]:
    out: list[Control] = []
    for i, item in enumerate(_read_yaml(path)):
        try:
            control = Control.model_validate({**item, "rule": package})
            out.extend(expand_variants(control, overrides.get(control.id)))
        except (ValidationError, RejectedError, TypeError, KeyError) as exc:
            where = item.get("id", f"#{i}") if isinstance(item, dict) else f"#{i}"
            raise RejectedError(f"{path.name}: control {where}: {exc}") from exc
    return out


def _check_pairing(path: Path, source: str | None, package: str, controls: list[Control]) -> None:
    automated = [c for c in controls if c.kind == "automated"]
    if source is None:
        if automated:
            raise RejectedError(f"{path.name}: missing Rego twin {path.stem}.rego")
        return
    found = _PACKAGE.search(source)
    if found is None or found.group(1) != package:
        raise RejectedError(f"{path.name}: expected `package {package}`")
    in_rego = set(_DENY_ID.findall(source)) | set(_VARIANTS.findall(source))
    declared = {c.base_id for c in automated}
    # A control without a rule would always pass; a rule without a control has no metadata.
    if declared - in_rego:
        missing = sorted(declared - in_rego)
        raise RejectedError(f"{path.name}: no `deny contains` rule for {missing}")
    if in_rego - declared:
        raise RejectedError(f"{path.name}: rules without a control: {sorted(in_rego - declared)}")
    _check_comparisons(path, source)


def _check_comparisons(path: Path, source: str) -> None:
    for n, line in enumerate(source.splitlines(), 1):
        code = line.split("#", 1)[0]
        if _COMPARISON.search(re.sub(r'"[^"]*"', '""', code)):
            raise RejectedError(
                f"{path.stem}.rego:{n}: compare numbers with lib.below/at_most/above/at_least,"
                " not a bare operator (an unknown or string value must never compare as a number)"
            )


def _check_function_arities(modules: Mapping[str, str]) -> None:
    # rego-cpp mis-evaluates (or crashes on) two functions of one name and different arities
    # in different packages; refuse the library with a readable reason instead.
    seen: dict[str, tuple[int, str]] = {}
    for name, source in modules.items():
        for fn, args, *_ in _FUNCTION.findall(source):
            arity = len([a for a in args.split(",") if a.strip()])
            first = seen.setdefault(fn, (arity, name))
            if first[0] != arity:
                raise RejectedError(
                    f"{name}: function {fn} takes {arity} arguments but {first[1]} defines one"
                    f" with {first[0]}; rename one of them (regopy cannot tell them apart)"
                )


def load_library(
    controls_dir: Path | str | None = None,
    rego_dir: Path | str | None = None,
    parameters: Mapping[str, Mapping[str, Any]] | None = None,
) -> ControlLibrary:
    """Load `controls/<name>.yaml` with `rego/<name>.rego` (package `novacron.compliance.<name>`).

    Rego files without a YAML twin (helper packages such as `lib.rego`) are loaded as-is; a YAML
    file of manual controls only needs no Rego twin. `parameters` override control parameters
    (control id → {parameter: value}) for every framework.
    """
    cdir = Path(controls_dir) if controls_dir is not None else CONTROLS_DIR
    rdir = Path(rego_dir) if rego_dir is not None else REGO_DIR
    modules = {p.name: p.read_text(encoding="utf-8") for p in sorted(rdir.glob("*.rego"))
               if not p.name.endswith("_test.rego")}
    # The helpers (unknown values, ports, parameters) come with the product; a custom library
    # may bring its own copy, else it gets the shipped one.
    modules.setdefault("lib.rego", (REGO_DIR / "lib.rego").read_text(encoding="utf-8"))
    controls: list[Control] = []
    for path in sorted(cdir.glob("*.yaml")):
        package = f"{PACKAGE_PREFIX}.{path.stem}"
        found = _controls_of(path, package, parameters or {})
        _check_pairing(path, modules.get(f"{path.stem}.rego"), package, found)
        controls.extend(found)
    if not controls:
        raise RejectedError(f"no controls found under {cdir}")
    _check_function_arities(modules)
    unknown = set(parameters or {}) - {c.base_id for c in controls if c.parameters}
    if unknown:
        raise RejectedError(f"parameters given for controls without parameters: {sorted(unknown)}")
    return ControlLibrary(controls, modules)


def standard_or_all(name: str | None) -> str | None:
    """Normalise an optional standard name (`all` or None means every standard)."""
    if name is None or name.strip().lower() in ("", "all"):
        return None
    return normalise_standard(name)
