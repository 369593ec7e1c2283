"""Host built-ins for OPA's wasm target: the ones OPA leaves to the SDK, as OPA's topdown does them.

Each receives its arguments as JSON values and returns one; raising aborts the evaluation, which
the engine reports as a runtime error (fail closed). Only what the policies need is here; a
module calling any other SDK built-in is refused when it loads.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, NoReturn

from policies._strict_rego import ERROR_BUILTIN

__all__ = ["HOST_BUILTINS", "go_value", "sprintf"]

_VERB = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])")


def builtin_error(name: Any) -> NoReturn:
    """Called by the strict wrappers when a native built-in failed."""
    msg = f"built-in {name} failed"
    raise ValueError(msg)


def sprintf(fmt: Any, args: Any) -> str:
    """OPA's sprintf: Go's fmt with numbers as int64/float64, strings raw, others as Rego text."""
    if not isinstance(fmt, str) or not isinstance(args, list):
        msg = "sprintf: operand 1 must be a string and operand 2 an array"
        raise TypeError(msg)
    values = [_go_arg(a) for a in args]
    pieces, tail = _parsed(fmt)
    out: list[str] = []
    used = 0
    for literal, (flags, width, prec, verb) in pieces:
        out.append(literal)
        if verb == "%":
            out.append("%")
        elif used >= len(values):
            out.append(f"%!{verb}(MISSING)")
        else:
            out.append(_pad(_format(verb, values[used], prec), flags, width))
            used += 1
    out.append(tail)
    if used < len(values):
        extra = ", ".join(f"{_go_type(v)}={go_value(v)}" for v in values[used:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


Verb = tuple[str, str | None, str | None, str]


@functools.lru_cache(maxsize=1024)
def _parsed(fmt: str) -> tuple[tuple[tuple[str, Verb], ...], str]:
    """The format split once into (literal before, verb) pairs and the tail: policies format
    with a few constant strings, so each is parsed once rather than per call."""
    pieces: list[tuple[str, Verb]] = []
    pos = 0
    for m in _VERB.finditer(fmt):
        flags, width, prec, verb = m.groups()
        pieces.append((fmt[pos:m.start()], (flags, width, prec, verb)))
        pos = m.end()
    return tuple(pieces), fmt[pos:]


def _go_arg(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        return _Rego(value)
    return value  # int, float, str


class _Rego:
    """A value Go prints with Rego's own syntax (`t.Value.String()`)."""

    def __init__(self, value: Any) -> None:
        self.text = _rego_text(value)


def _rego_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_rego_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_rego_text(k)}: {_rego_text(v)}" for k, v in value.items()) + "}"
    return go_value(value)


def go_value(value: Any) -> str:
    """Go's %v of an int64, float64, string or Rego value."""
    if isinstance(value, _Rego):
        return value.text
    if isinstance(value, float):
        return _go_float(value)
    return str(value)


def _go_float(f: float) -> str:
    if f != f or f in (float("inf"), float("-inf")):
        return {True: "NaN"}.get(f != f, "+Inf" if f > 0 else "-Inf")
    d = Decimal(repr(f))
    exp = d.adjusted()
    if exp < -4 or exp >= 21:  # Go's %v switches to an exponent outside this range
        digits = "".join(map(str, d.as_tuple().digits)).rstrip("0") or "0"
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{'-' if f < 0 else ''}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    text = format(d, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return {int: "int64", float: "float64", str: "string"}.get(type(value), "ast.Value")


def _format(verb: str, value: Any, prec: str | None) -> str:
    if verb in "vs" and not (verb == "s" and isinstance(value, (int, float))):
        text = go_value(value)
        return text[: int(prec)] if prec is not None and isinstance(value, str) else text
    if verb == "d" and isinstance(value, int):
        return str(value)
    if verb in "feEgG" and isinstance(value, float):
        return format(float(value), f".{prec or 6}{verb}" if verb != "g" else "g")
    if verb in "xX" and isinstance(value, (int, str)):
        text = format(value, "x") if isinstance(value, int) else value.encode().hex()
        return text.upper() if verb == "X" else text
    if verb == "q" and isinstance(value, str):
        return _rego_text(value)
    return f"%!{verb}({_go_type(value)}={go_value(value)})"


def _pad(text: str, flags: str, width: str | None) -> str:
    if not width:
        return text
    if "-" in flags:
        return text.ljust(int(width))
    return text.rjust(int(width), "0" if "0" in flags and text[:1].isdigit() else " ")


HOST_BUILTINS: dict[str, Callable[..., Any]] = {"sprintf": sprintf, ERROR_BUILTIN: builtin_error}
"""Host built-ins by Rego name."""
