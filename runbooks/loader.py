"""Load YAML runbooks: JSON Schema check, then the pydantic model; and the runbook library."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pydantic
import yaml

from runbooks.model import Runbook, ValidationError

__all__ = ["LIBRARY_DIR", "SCHEMA_PATH", "Library", "load_file", "load_text", "parse_runbook"]

SCHEMA_PATH = Path(__file__).with_name("schema.json")
"""JSON Schema of the runbook format."""
LIBRARY_DIR = Path(__file__).with_name("library")
"""The runbooks shipped with NovaCron."""


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


def parse_runbook(data: Any, source: str = "<runbook>") -> Runbook:
    """Check a parsed document against the schema and build the Runbook; ValidationError if bad."""
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


def load_text(text: str, source: str = "<runbook>") -> Runbook:
    """Parse YAML text into a Runbook."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError([f"{source}: not valid YAML: {exc}"]) from exc
    return parse_runbook(data, source)


def load_file(path: Path) -> Runbook:
    """Load one runbook file."""
    return load_text(path.read_text(encoding="utf-8"), str(path))


class Library:
    """Runbooks by id from one or more folders (later folders override earlier ones)."""

    def __init__(self, folders: Iterable[Path] = (LIBRARY_DIR,)) -> None:
        self.folders = list(folders)
        self._books: dict[str, Runbook] = {}
        self._paths: dict[str, Path] = {}
        for folder in self.folders:
            for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
                book = load_file(path)
                self._books[book.id] = book
                self._paths[book.id] = path

    def ids(self) -> list[str]:
        """Every runbook id, sorted."""
        return sorted(self._books)

    def get(self, runbook_id: str) -> Runbook:
        """The runbook with this id; KeyError when unknown."""
        try:
            return self._books[runbook_id]
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

    def __contains__(self, runbook_id: object) -> bool:
        return runbook_id in self._books
