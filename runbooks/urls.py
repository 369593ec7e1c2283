"""URLs from templates: the base comes from the runbook text or one endpoint variable at the
start; every other value is encoded for the part of the URL it lands in.

`https://api.example/records/${id}?q=${q}` and `${dns_api}/records/${id}` are the two shapes.
A value in the path is one path segment (`/`, `?`, `#`, `%` are percent-encoded) and may not make
its segment empty, `.` or `..`, so event data can never change the path or reach another endpoint;
a value in the query or fragment is percent-encoded the same way. A variable may begin the URL
only when it is a base URL by declaration (`kind: endpoint` or `webhook`, from the file or the
executor's configuration) or a `${secret:…}`; a variable inside the scheme or host is refused.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from runbooks.interpolate import VAR, Interpolator, as_text
from runbooks.params import Parameter
from schemas.errors import NonRetryableError

__all__ = ["BASE_KINDS", "URLTemplate", "base_names", "render_url", "url_problems"]

BASE_KINDS: frozenset[str] = frozenset({"endpoint", "webhook"})
"""Parameter kinds whose value is a base URL (set only by the file or the configuration)."""

_AUTHORITY = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")
_SCHEMES = ("http", "https")
_DOT_SEGMENTS = ("", ".", "..")


@dataclass(frozen=True)
class URLTemplate:
    """A URL template split where the runbook text splits it: base, path, query, fragment."""

    base: str
    """The literal `scheme://host[:port]`, or one `${var}` holding a base URL."""
    path: str
    """Everything up to the first literal `?` or `#` (empty or starting with `/`)."""
    query: str | None
    """After the first literal `?` (None: no query)."""
    fragment: str | None
    """After the first literal `#` (None: no fragment)."""

    @property
    def base_var(self) -> re.Match[str] | None:
        """The base when it is a variable (group 1 `secret:` or None, group 2 the name)."""
        return VAR.fullmatch(self.base)

    @property
    def rest(self) -> str:
        """The template after the base."""
        out = self.path
        if self.query is not None:
            out += "?" + self.query
        if self.fragment is not None:
            out += "#" + self.fragment
        return out

    @classmethod
    def parse(cls, template: str) -> URLTemplate:
        """Split a template; ValueError (the reason) when its base is not allowed."""
        head = VAR.match(template) or _AUTHORITY.match(template)
        if head is None:
            raise ValueError("a URL must start with http(s):// or with an endpoint variable")
        base, rest = head.group(0), template[head.end():]
        if not VAR.fullmatch(base):
            if VAR.search(base):
                raise ValueError("a variable inside the URL's scheme or host; declare the whole "
                                 "base URL as one `kind: endpoint` parameter and start with it")
            if base.split(":", 1)[0].lower() not in _SCHEMES:
                raise ValueError(f"not an http(s) URL: {base.split(':', 1)[0]}://")
        if rest and rest[0] not in "/?#":
            raise ValueError("after the base URL the template must go on with /, ? or #")
        rest, _, fragment = rest.partition("#") if "#" in rest else (rest, "", None)
        path, _, query = rest.partition("?") if "?" in rest else (rest, "", None)
        return cls(base, path, query, fragment)


def base_names(declared: Mapping[str, Parameter]) -> frozenset[str]:
    """The declared variables that may begin a URL."""
    return frozenset(n for n, p in declared.items() if p.kind in BASE_KINDS)


def url_problems(template: str, bases: Collection[str]) -> list[str]:
    """Why a URL template may not be rendered (empty when it may); `bases` as in render_url."""
    try:
        parsed = URLTemplate.parse(template)
    except ValueError as exc:
        return [str(exc)]
    var = parsed.base_var
    if var and not var.group(1) and var.group(2) not in bases:
        return [f"${{{var.group(2)}}} begins the URL but is not a base URL: declare it as a "
                "parameter of `kind: endpoint` (or `webhook`)"]
    return []


def _encode(value: str) -> str:
    return quote(value, safe="")


def _path(interp: Interpolator, path: str) -> str:
    segments = []
    for segment in path.split("/"):
        filled = interp.text(segment, escape=_encode)
        if VAR.search(segment) and filled in _DOT_SEGMENTS:
            names = ", ".join(m.group(0) for m in VAR.finditer(segment))
            raise NonRetryableError(f"{names} makes a URL path segment {filled!r}: that would "
                                    "change the path (refused)")
        segments.append(filled)
    return "/".join(segments)


def _base(interp: Interpolator, parsed: URLTemplate, bases: Collection[str]) -> str:
    var = parsed.base_var
    if var is None:
        return parsed.base
    secret, name = bool(var.group(1)), var.group(2)
    if not secret and name not in bases:
        raise NonRetryableError(url_problems(parsed.base, bases)[0])
    value = as_text(interp.lookup(name, secret))
    parts = urlsplit(value)
    shown = "a secret" if secret else f"${{{name}}}"
    if parts.scheme not in _SCHEMES or not parts.netloc:
        raise NonRetryableError(f"{shown} is not an http(s) base URL")
    if not value.isascii() or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise NonRetryableError(f"{shown} has spaces, control or non-ASCII characters")
    if parsed.rest and (parts.query or parts.fragment or value.endswith(("?", "#"))):
        raise NonRetryableError(f"{shown} has a query or fragment, so the rest of the URL "
                                "would land in it")
    return value[:-1] if value.endswith("/") and parsed.rest.startswith("/") else value


def render_url(interp: Interpolator, template: str, bases: Collection[str]) -> str:
    """The URL a template gives; NonRetryableError when it may not be built.

    `bases`: names of variables declared as base URLs (`kind: endpoint` or `webhook`)."""
    try:
        parsed = URLTemplate.parse(template)
    except ValueError as exc:
        raise NonRetryableError(str(exc)) from None
    url = _base(interp, parsed, bases) + _path(interp, parsed.path)
    if parsed.query is not None:
        url += "?" + interp.text(parsed.query, escape=_encode)
    if parsed.fragment is not None:
        url += "#" + interp.text(parsed.fragment, escape=_encode)
    return url
