"""`${var}` and `${secret:NAME}` interpolation, secret lookup and redaction."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "REDACTED",
    "VAR",
    "EnvSecrets",
    "Interpolator",
    "Redactor",
    "Secrets",
    "StaticSecrets",
    "as_text",
    "references",
]

VAR = re.compile(r"\$\{(secret:)?([A-Za-z_][A-Za-z0-9_]*)\}")
"""A `${name}` or `${secret:NAME}` reference."""
REDACTED = "***"
"""What a secret value is replaced by."""
_MIN_SECRET = 3  # shorter values would redact ordinary text everywhere


def references(value: Any) -> set[str]:
    """Every `${…}` reference in a nested value; secrets as `secret:NAME`."""
    found: set[str] = set()
    if isinstance(value, str):
        for m in VAR.finditer(value):
            found.add((m.group(1) or "") + m.group(2))
    elif isinstance(value, Mapping):
        for item in value.values():
            found |= references(item)
    elif isinstance(value, list | tuple):
        for item in value:
            found |= references(item)
    return found


def as_text(value: Any) -> str:
    """How a variable reads inside a string: JSON for structures, lowercase booleans."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


class Secrets(Protocol):
    """Where `${secret:NAME}` values come from."""

    def get(self, name: str) -> str | None:
        """The secret's value, or None when it is not set."""
        ...


class EnvSecrets:
    """Secrets from `NOVACRON_SECRET_<NAME>` or else the file `<folder>/<NAME>` (one value each)."""

    def __init__(self, folder: Path | None = None, env: Mapping[str, str] | None = None) -> None:
        self.folder = folder
        self.env = os.environ if env is None else env

    def get(self, name: str) -> str | None:
        value = self.env.get(f"NOVACRON_SECRET_{name}")
        if value is not None:
            return value
        if self.folder is not None:
            path = self.folder / name
            if path.is_file():
                return path.read_text().rstrip("\r\n")
        return None


class StaticSecrets:
    """A fixed dict of secrets (tests, CLI)."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = dict(values)

    def get(self, name: str) -> str | None:
        return self.values.get(name)


class Redactor:
    """Replaces every secret value it has seen by `***` in text and nested values."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        for v in values:
            self.add(v)

    def add(self, value: str) -> None:
        """Remember a secret value (and its JSON-escaped form, which may appear in bodies)."""
        if len(value) >= _MIN_SECRET:
            self._values.add(value)
            self._values.add(json.dumps(value)[1:-1])

    def text(self, text: str) -> str:
        """The text with every known secret replaced."""
        # longest first, so a secret that contains another is replaced whole
        for value in sorted(self._values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, REDACTED)
        return text

    def value(self, value: Any) -> Any:
        """A nested value with every string redacted."""
        if not self._values:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value


class Interpolator:
    """Fills `${var}`s from a context and `${secret:NAME}`s from a secret store."""

    def __init__(
        self,
        variables: Mapping[str, Any],
        secrets: Secrets,
        redactor: Redactor,
        url_bases: frozenset[str] = frozenset(),
    ) -> None:
        self.variables = variables
        self.secrets = secrets
        self.redactor = redactor
        self.url_bases = url_bases
        """Variables declared as base URLs (kind endpoint or webhook): only these may begin a
        URL (runbooks.urls); every other value is encoded for its part of the URL."""

    def lookup(self, name: str, secret: bool) -> Any:
        """One variable's value; KeyError when it is missing (validation prevents that)."""
        if not secret:
            return self.variables[name]
        value = self.secrets.get(name)
        if value is None:
            raise KeyError(f"secret:{name}")
        self.redactor.add(value)
        return value

    def text(self, template: str, escape: Callable[[str], str] | None = None) -> str:
        """Substitute inside a string; `escape` is applied to each inserted value."""

        def fill(m: re.Match[str]) -> str:
            raw = as_text(self.lookup(m.group(2), bool(m.group(1))))
            return raw if escape is None else escape(raw)

        return VAR.sub(fill, template)

    def value(self, template: Any, escape: Callable[[str], str] | None = None) -> Any:
        """Substitute in a nested value; a string that is exactly `${x}` keeps x's type."""
        if isinstance(template, str):
            m = VAR.fullmatch(template)
            if m:
                return self.lookup(m.group(2), bool(m.group(1)))
            return self.text(template, escape)
        if isinstance(template, Mapping):
            return {k: self.value(v, escape) for k, v in template.items()}
        if isinstance(template, list | tuple):
            return [self.value(v, escape) for v in template]
        return template
