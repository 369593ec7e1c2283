"""Strict built-in errors for OPA's WebAssembly target, which has none of its own.

A native built-in that fails in OPA's wasm (`to_number("abc")`, a division by zero, `"a" + 1`,
`count(5)`) returns no value, so the expression is undefined and a `deny` silently switches off.
Before `opa build -t wasm`, every call of such a built-in is routed through a wrapper function
that returns the built-in's value, or else calls `novacron.builtin_error(name)`, a host built-in
that aborts the evaluation (the engine then fails closed naming the policy). Calls are found in
OPA's own parse tree (`opa parse --format json`), so only real calls are rewritten, never text
in strings or comments.
"""

from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

__all__ = ["ERROR_BUILTIN", "STRICT_PACKAGE", "StrictRewriteError", "strict_modules"]

STRICT_PACKAGE = "novacron_strict"
ERROR_BUILTIN = "novacron.builtin_error"
# Native wasm built-ins whose "no value" means "failed" in OPA's topdown (a strict error there).
# Comparisons, type tests, `in`, validity checks and relations (walk) never fail; max/min of an
# empty collection is undefined in topdown too, so only a non-collection is an error.
_WRAPPED = frozenset("""
plus minus mul div abs round ceil floor rem array.concat array.flatten array.reverse array.slice
set_diff and or intersection union bits.or bits.and bits.negate bits.xor bits.lsh bits.rsh count
sum product sort all any base64.decode base64.encode base64url.encode base64url.decode
net.cidr_contains net.cidr_overlap net.cidr_intersects glob.match json.marshal json.unmarshal
object.filter object.get object.keys object.remove object.union object.union_n concat format_int
indexof substring lower upper contains startswith endswith strings.reverse split replace
strings.replace_n trim trim_left trim_prefix trim_right trim_suffix trim_space numbers.range
to_number graph.reachable regex.match re_match regex.find_all_string_submatch_n json.remove
json.filter
""".split())
_COLLECTION_ONLY = frozenset({"max", "min"})


class StrictRewriteError(Exception):
    """A module could not be rewritten (the engine treats it as a compile error)."""


@dataclass(frozen=True, slots=True)
class _Call:
    start: int
    end: int
    name: str
    args: tuple[tuple[int, int], ...]


def strict_modules(modules: dict[str, str], opa: Path, timeout: float) -> dict[str, str]:
    """The modules with wrapped built-in calls, plus the wrapper package (`STRICT_PACKAGE`)."""
    out: dict[str, str] = {}
    used: dict[str, int] = {}
    for name, source in modules.items():
        tree = _parse(source, opa, timeout)
        calls = sorted(_calls(tree, source.encode()), key=lambda c: (c.start, -c.end))
        for c in calls:
            used[c.name] = max(used.get(c.name, 0), len(c.args))
        out[name] = _render(source.encode(), calls, 0, len(source.encode())).decode()
    out[f"{STRICT_PACKAGE}.rego"] = _wrappers(used)
    return out


def _parse(source: str, opa: Path, timeout: float) -> Any:
    done = subprocess.run([str(opa), "parse", "--format", "json", "--json-include",
                           "locations,-comments", "/dev/stdin"], input=source.encode(),
                          capture_output=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise StrictRewriteError(done.stderr.decode(errors="replace").strip()[:500])
    return orjson.loads(done.stdout)


def _calls(node: Any, source: bytes) -> Iterator[_Call]:
    if isinstance(node, list):
        for item in node:
            yield from _calls(item, source)
        return
    if not isinstance(node, dict):
        return
    terms = node.get("terms")
    if node.get("type") == "call":
        call = _call_of(node["value"], source, node.get("location"))
        if call is not None:
            yield call
    elif isinstance(terms, list) and terms:  # an expression that is a call: `startswith(x, "a")`
        call = _call_of(terms, source, None)
        if call is not None:
            yield call
    for value in node.values():
        yield from _calls(value, source)


def _call_of(parts: list[Any], source: bytes, location: Any) -> _Call | None:
    op, args = parts[0], parts[1:]
    name = _name(op)
    if name not in _WRAPPED and name not in _COLLECTION_ONLY:
        return None
    spans = tuple(_span(a.get("location"), source) for a in args)
    if location is not None:
        start, end = _span(location, source)
    else:  # a prefix call as a whole expression: from the name to the closing parenthesis
        start = _span(op.get("location"), source)[0]
        end = source.index(b")", spans[-1][1] if spans else start) + 1
    return _Call(start, end, name, spans)


def _name(op: Any) -> str | None:
    if not isinstance(op, dict) or op.get("type") != "ref":
        return None
    parts = op["value"]
    if not parts or parts[0].get("type") != "var":
        return None
    names = [parts[0]["value"]] + [p["value"] for p in parts[1:] if p.get("type") == "string"]
    return ".".join(names) if len(names) == len(parts) else None


def _span(location: Any, source: bytes) -> tuple[int, int]:
    if not isinstance(location, dict) or "text" not in location:
        raise StrictRewriteError("a built-in call without a source location")
    text = base64.b64decode(location["text"])
    lines = source.split(b"\n")
    start = sum(len(line) + 1 for line in lines[: location["row"] - 1]) + location["col"] - 1
    if source[start:start + len(text)] != text:
        # OPA places a call whose first operand is parenthesised at the operand's inside while
        # its text starts at the parenthesis: take the nearest occurrence of the text
        near = [i for i in range(max(0, start - 64), start + 1)
                if source.startswith(text, i)]
        if not near:
            raise StrictRewriteError(f"source location {location['row']}:{location['col']} "
                                     "does not match its text")
        start = near[-1]
    return start, start + len(text)


def _render(source: bytes, calls: list[_Call], lo: int, hi: int) -> bytes:
    out, pos = [], lo
    for c in calls:
        if c.start < pos or c.end > hi or c.start < lo:
            continue  # outside this range, or inside a call already rendered
        args = [_render(source, calls, a, b) for a, b in c.args]
        out += [source[pos:c.start], f"data.{STRICT_PACKAGE}.{_fn(c.name)}(".encode(),
                b", ".join(args), b")"]
        pos = c.end
    out.append(source[pos:hi])
    return b"".join(out)


def _fn(name: str) -> str:
    return "b_" + re.sub(r"\W", "_", name)


def _wrappers(used: dict[str, int]) -> str:
    lines = [f"package {STRICT_PACKAGE}", "", "import rego.v1", ""]
    for name, arity in sorted(used.items()):
        params = ", ".join(f"a{i}" for i in range(arity))
        guard = ""
        if name in _COLLECTION_ONLY:  # an empty collection is undefined, not an error
            guard = " if { not is_array(a0); not is_set(a0) }"
        lines += [f"{_fn(name)}({params}) := y if {{", f"\ty := {name}({params})",
                  f'}} else := {ERROR_BUILTIN}("{name}"){guard}', ""]
    return "\n".join(lines)
