"""Load YAML runbooks: size and alias limits, JSON Schema check, the pydantic model; the library."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pydantic
import yaml
from pydantic import BaseModel, Field

from runbooks.model import Runbook, ValidationError

__all__ = [
    "LIBRARY_DIR",
    "SCHEMA_PATH",
    "Library",
    "LoadLimits",
    "load_file",
    "load_text",
    "parse_runbook",
]

SCHEMA_PATH = Path(__file__).with_name("schema.json")
"""JSON Schema of the runbook format."""
LIBRARY_DIR = Path(__file__).with_name("library")
"""The runbooks shipped with NovaCron."""


class LoadLimits(BaseModel):
    """Bounds on a runbook file, checked before anything expands it (YAML bombs, huge DAGs)."""

    max_bytes: int = Field(default=1_048_576, ge=1)
    """Largest runbook file, in bytes."""
    max_aliases: int = Field(default=100, ge=0)
    """Most YAML aliases (`*name`) in one file."""
    max_nodes: int = Field(default=200_000, ge=1)
    """Most YAML nodes once every alias is expanded (a billion-laughs file has 10^9)."""
    max_depth: int = Field(default=64, ge=1)
    """Deepest nesting of mappings and lists."""
    max_steps: int = Field(default=500, ge=1)
    """Most steps in one runbook."""


LIMITS = LoadLimits()


class _CountingLoader(yaml.SafeLoader):
    """A safe loader that counts aliases while it composes the node graph."""

    def __init__(self, text: str, limits: LoadLimits) -> None:
        super().__init__(text)
        self.limits = limits
        self.aliases = 0
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > self.limits.max_aliases:
                msg = f"more than {self.limits.max_aliases} YAML aliases"
                raise _TooBig(msg)
        self.depth += 1
        if self.depth > self.limits.max_depth + 1:  # before the recursion gets deep
            raise _TooBig(f"nested deeper than {self.limits.max_depth} levels")
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _TooBig(Exception):
    pass


def _expanded_size(root: yaml.Node, limits: LoadLimits) -> int:
    """Nodes of the document with aliases expanded, without expanding them (memoised walk)."""
    sizes: dict[int, int | None] = {}

    def size(node: yaml.Node, depth: int) -> int:
        known = sizes.get(id(node), 0)
        if known is None:
            raise _TooBig("a YAML alias refers to its own ancestor (recursive document)")
        if known:
            return known
        if depth > limits.max_depth:
            raise _TooBig(f"nested deeper than {limits.max_depth} levels")
        sizes[id(node)] = None
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        if total > limits.max_nodes:
            raise _TooBig(f"more than {limits.max_nodes} YAML nodes once aliases are expanded")
        sizes[id(node)] = total
        return total

    return size(root, 0)


def safe_yaml(text: str, limits: LoadLimits = LIMITS) -> Any:
    """Parse YAML with size, alias, depth and expansion limits; _TooBig or YAMLError if bad."""
    if len(text.encode("utf-8")) > limits.max_bytes:
        raise _TooBig(f"larger than {limits.max_bytes} bytes")
    loader = _CountingLoader(text, limits)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, limits)
        return loader.construct_document(node)
    except RecursionError:
        raise _TooBig(f"nested deeper than {limits.max_depth} levels") from None
    finally:
        loader.dispose()


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def _where(data: Any, path: Iterable[Any]) -> str:
    parts = list(path)
    if len(parts) >= 2 and parts[0] == "steps" and isinstance(parts[1], int):
        steps = data.get("steps") if isinstance(data, dict) else None
        step = steps[parts[1]] if isinstance(steps, list) and len(steps) > parts[1] else {}
        sid = step.get("id") if isinstance(step, dict) else None
        rest = ".".join(str(p) for p in parts[2:]) or "(step)"
        return f"step {sid or '#' + str(parts[1] + 1)}: {rest}"
    return ".".join(str(p) for p in parts) or "(runbook)"


def parse_runbook(data: Any, source: str = "<runbook>", limits: LoadLimits = LIMITS) -> Runbook:
    """Check a parsed document against the schema and build the Runbook; ValidationError if bad."""
    steps = data.get("steps") if isinstance(data, dict) else None
    if isinstance(steps, list) and len(steps) > limits.max_steps:
        raise ValidationError([f"{source}: {len(steps)} steps, more than {limits.max_steps}"])
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        raise ValidationError(
            [f"{source}: {_where(data, e.absolute_path)}: {e.message}" for e in errors]
        )
    try:
        return Runbook.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = [f"{source}: {_where(data, err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise ValidationError(problems) from exc


def load_text(text: str, source: str = "<runbook>", limits: LoadLimits = LIMITS) -> Runbook:
    """Parse YAML text into a Runbook."""
    try:
        data = safe_yaml(text, limits)
    except _TooBig as exc:
        raise ValidationError([f"{source}: refused: {exc}"]) from None
    except yaml.YAMLError as exc:
        raise ValidationError([f"{source}: not valid YAML: {exc}"]) from exc
    return parse_runbook(data, source, limits)


def load_file(path: Path, limits: LoadLimits = LIMITS) -> Runbook:
    """Load one runbook file (its size is checked before it is read)."""
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise ValidationError([f"{path}: refused: {size} bytes, larger than {limits.max_bytes}"])
    return load_text(path.read_text(encoding="utf-8"), str(path), limits)


class Library:
    """Runbooks by id from one or more folders (later folders override earlier ones)."""

    def __init__(
        self, folders: Iterable[Path] = (LIBRARY_DIR,), limits: LoadLimits = LIMITS
    ) -> None:
        self.folders = list(folders)
        self._books: dict[str, Runbook] = {}
        self._paths: dict[str, Path] = {}
        self._registered: dict[str, Runbook] = {}  # from the `runbooks` topic: they win
        for folder in self.folders:
            for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
                book = load_file(path, limits)
                self._books[book.id] = book
                self._paths[book.id] = path

    def ids(self) -> list[str]:
        """Every runbook id, sorted."""
        return sorted({*self._books, *self._registered})

    def get(self, runbook_id: str) -> Runbook:
        """The runbook with this id (a registered one before a file); KeyError when unknown."""
        try:
            return self._registered.get(runbook_id) or self._books[runbook_id]
        except KeyError:
            raise KeyError(
                f"unknown runbook {runbook_id!r} (known: {', '.join(self.ids())})"
            ) from None

    def path(self, runbook_id: str) -> Path:
        """The file a runbook came from."""
        return self._paths[runbook_id]

    def add(self, runbook: Runbook) -> None:
        """Register a runbook built in code (tests, sub-workflows)."""
        self._books[runbook.id] = runbook

    def register(self, runbook_id: str, runbook: Runbook | None) -> None:
        """Serve a runbook of the registry topic instead of a file of the same id; None withdraws
        it (the file, if any, serves again). `runbooks.registry.RunbookStore.on_change` fits."""
        if runbook is None:
            self._registered.pop(runbook_id, None)
        else:
            self._registered[runbook_id] = runbook

    def registered(self, runbook_id: str) -> bool:
        """Whether the runbook of this id comes from the registry topic."""
        return runbook_id in self._registered

    def __contains__(self, runbook_id: object) -> bool:
        return runbook_id in self._books or runbook_id in self._registered
