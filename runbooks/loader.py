"""Load YAML runbooks: size and alias limits, JSON Schema check, the pydantic model; the library."""

from __future__ import annotations

import difflib
import json
import re
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


_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


def _shown(key: Any) -> str:
    """A key of the document as it may appear in an error: names only, never other text."""
    if isinstance(key, int):
        return str(key)
    return key if isinstance(key, str) and _NAME.fullmatch(key) else "<key>"


def _where(data: Any, path: Iterable[Any]) -> str:
    parts = list(path)
    if len(parts) >= 2 and parts[0] == "steps" and isinstance(parts[1], int):
        steps = data.get("steps") if isinstance(data, dict) else None
        step = steps[parts[1]] if isinstance(steps, list) and len(steps) > parts[1] else {}
        sid = step.get("id") if isinstance(step, dict) else None
        name = sid if isinstance(sid, str) and _NAME.fullmatch(sid) else f"#{parts[1] + 1}"
        rest = ".".join(_shown(p) for p in parts[2:]) or "(step)"
        return f"step {name}: {rest}"
    return ".".join(_shown(p) for p in parts) or "(runbook)"


def _reason(error: jsonschema.ValidationError) -> str:
    """What a schema error says, from the rule only: the document's values are never quoted
    (a file that is not a runbook must not be shown back, e.g. `runbook run /etc/passwd`)."""
    rule, want = error.validator, error.validator_value
    if rule == "additionalProperties" and isinstance(error.instance, dict):
        # the names come from the schema: a close match for each unknown key, and what is allowed
        known = sorted(error.schema.get("properties", {}))
        extra = [str(k) for k in error.instance if k not in known]
        close = sorted({m for k in extra for m in difflib.get_close_matches(k, known, 1, 0.75)})
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        return f"{len(extra)} unknown field(s){hint}; allowed: {', '.join(known)}"
    simple = {
        "type": lambda: f"must be of type {' or '.join(want) if isinstance(want, list) else want}",
        "required": lambda: error.message,  # names a property of the schema
        "enum": lambda: f"must be one of {', '.join(map(str, want))}",
        "pattern": lambda: f"must match the pattern {want}",
        "minimum": lambda: f"must be at least {want}",
        "maximum": lambda: f"must be at most {want}",
        "exclusiveMinimum": lambda: f"must be more than {want}",
        "minLength": lambda: f"must have at least {want} characters",
        "maxLength": lambda: f"must have at most {want} characters",
        "minItems": lambda: f"must have at least {want} items",
        "maxItems": lambda: f"must have at most {want} items",
        "uniqueItems": lambda: "has duplicate items",
        "propertyNames": lambda: "has a key that is not a variable name ([A-Za-z_][A-Za-z0-9_]*)",
        "oneOf": lambda: "matches none of the allowed forms",
        "anyOf": lambda: "matches none of the allowed forms",
    }
    return simple[str(rule)]() if rule in simple else f"breaks the schema rule {rule}"


def _not_a_runbook(data: Any) -> str | None:
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        return f"not a runbook: a runbook is a YAML mapping with metadata and steps; this " \
               f"document is {kind}"
    if "metadata" not in data and "steps" not in data:
        return "not a runbook: a runbook is a YAML mapping with metadata and steps; this " \
               "mapping has neither"
    return None


def parse_runbook(data: Any, source: str = "<runbook>", limits: LoadLimits = LIMITS) -> Runbook:
    """Check a parsed document against the schema and build the Runbook; ValidationError if bad.

    Errors name the source, the place (field, step id) and the rule, never the document's text."""
    shape = _not_a_runbook(data)
    if shape is not None:
        raise ValidationError([f"{source}: {shape}"])
    steps = data.get("steps")
    if isinstance(steps, list) and len(steps) > limits.max_steps:
        raise ValidationError([f"{source}: {len(steps)} steps, more than {limits.max_steps}"])
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        raise ValidationError(
            [f"{source}: {_where(data, e.absolute_path)}: {_reason(e)}" for e in errors]
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
        raise ValidationError([f"{source}: not valid YAML{_yaml_where(exc)}"]) from None
    return parse_runbook(data, source, limits)


def _yaml_where(exc: yaml.YAMLError) -> str:
    """Line, column and the parser's words, without the snippet of the file PyYAML quotes."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or ""
    return where + (f" ({_QUOTED.sub('…', problem)})" if problem else "")


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def load_file(path: Path, limits: LoadLimits = LIMITS) -> Runbook:
    """Load one runbook file: a regular file, its size checked before and while it is read."""
    if not path.is_file():  # a FIFO or /dev/zero would block or never end
        raise ValidationError([f"{path}: not a regular file"])
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise ValidationError([f"{path}: refused: {size} bytes, larger than {limits.max_bytes}"])
    with path.open("rb") as f:
        raw = f.read(limits.max_bytes + 1)  # /proc files report size 0
    if len(raw) > limits.max_bytes:
        raise ValidationError([f"{path}: refused: larger than {limits.max_bytes} bytes"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError([f"{path}: not UTF-8 text (byte {exc.start})"]) from None
    return load_text(text, str(path), limits)


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
