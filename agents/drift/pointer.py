"""RFC 6901 JSON pointers and wildcard path patterns (`*` per segment, `**` across segments)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "GLOBSTAR",
    "Matcher",
    "State",
    "escape",
    "format_pointer",
    "parse_pattern",
    "parse_pointer",
]

GLOBSTAR = "**"
State = int
_GLOB_CHARS = re.compile(r"[*?\[]")
_CACHE_LIMIT = 200_000


def escape(segment: str) -> str:
    """Escape one reference token: `~` → `~0`, `/` → `~1` (order matters, RFC 6901 §3)."""
    if "~" in segment or "/" in segment:
        return segment.replace("~", "~0").replace("/", "~1")
    return segment


def format_pointer(segments: Iterable[str | int]) -> str:
    """Join segments into a pointer: ("a/b", 0) → "/a~1b/0"; the root is ""."""
    return "".join("/" + escape(str(s)) for s in segments)


def parse_pointer(pointer: str) -> tuple[str, ...]:
    """Split a pointer into unescaped segments; "" is the root. Raises ValueError if malformed."""
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise ValueError(f"JSON pointer must start with '/': {pointer!r}")
    return tuple(s.replace("~1", "/").replace("~0", "~") for s in pointer[1:].split("/"))


def parse_pattern(pattern: str) -> tuple[str, ...]:
    """Split a path pattern; a leading `**` may omit the slash (`**/arn` == `/**/arn`)."""
    return parse_pointer("/" + pattern if pattern.startswith("**") else pattern)


@dataclass(frozen=True)
class _Segment:
    """One compiled pattern segment: a literal, a glob, or the globstar."""

    text: str
    regex: re.Pattern[str] | None = None

    def matches(self, segment: str) -> bool:
        if self.regex is None:
            return segment == self.text
        return self.regex.match(segment) is not None


def _compile_segment(text: str, case_sensitive: bool) -> _Segment:
    if text == GLOBSTAR:
        return _Segment(GLOBSTAR)
    if _GLOB_CHARS.search(text) is None and case_sensitive:
        return _Segment(text)
    flags = 0 if case_sensitive else re.IGNORECASE
    return _Segment(text, re.compile(fnmatch.translate(text), flags))


@dataclass
class Matcher:
    """A set of path patterns run as one NFA, stepped one segment at a time while walking a tree.

    A pattern accepts a node when it matches the node's full path; walkers treat an accepted
    container as accepting its whole subtree (so `/status` ignores everything under it).
    States are small interned ints (0 = no pattern can match any more), so the per-segment
    step is one dict lookup on an (int, str) key.
    """

    patterns: Sequence[str]
    """Pointer-style patterns such as `/ingress/*/description`, `**/arn`, `/tags/3`."""
    case_sensitive: bool = True
    """Compare segments case-sensitively (sensitive-path patterns are not)."""
    _compiled: list[tuple[_Segment, ...]] = field(init=False, repr=False)
    _sets: list[frozenset[tuple[int, int]]] = field(init=False, repr=False)
    _ids: dict[frozenset[tuple[int, int]], int] = field(init=False, repr=False)
    _accepted: list[list[int]] = field(init=False, repr=False)
    _steps: dict[tuple[int, str], int] = field(init=False, repr=False)
    start: State = field(init=False)

    def __post_init__(self) -> None:
        self._compiled = [
            tuple(_compile_segment(s, self.case_sensitive) for s in parse_pattern(p))
            for p in self.patterns
        ]
        self._sets, self._ids, self._accepted, self._steps = [], {}, [], {}
        self._intern(frozenset())
        self.start = self._intern(self._closure({(i, 0) for i in range(len(self._compiled))}))

    def _intern(self, nfa: frozenset[tuple[int, int]]) -> int:
        found = self._ids.get(nfa)
        if found is None:
            found = self._ids[nfa] = len(self._sets)
            self._sets.append(nfa)
            self._accepted.append(sorted(pi for pi, pos in nfa if pos == len(self._compiled[pi])))
        return found

    def _closure(self, states: set[tuple[int, int]]) -> frozenset[tuple[int, int]]:
        # A globstar may match zero segments, so its successor position is live as well.
        todo = list(states)
        while todo:
            pi, pos = todo.pop()
            pattern = self._compiled[pi]
            if pos < len(pattern) and pattern[pos].text == GLOBSTAR and (pi, pos + 1) not in states:
                states.add((pi, pos + 1))
                todo.append((pi, pos + 1))
        return frozenset(states)

    def step(self, state: State, segment: str) -> State:
        """The state after descending into `segment` (cached: walks revisit the same keys)."""
        if not state:
            return 0
        key = (state, segment)
        cached = self._steps.get(key)
        if cached is None:
            if len(self._steps) > _CACHE_LIMIT:
                self._steps.clear()  # array indices and map keys are unbounded
            cached = self._steps[key] = self._intern(self._advance(self._sets[state], segment))
        return cached

    def _advance(self, nfa: frozenset[tuple[int, int]], segment: str) -> frozenset[tuple[int, int]]:
        nxt: set[tuple[int, int]] = set()
        for pi, pos in nfa:
            pattern = self._compiled[pi]
            if pos >= len(pattern):
                continue
            seg = pattern[pos]
            if seg.text == GLOBSTAR:
                nxt.add((pi, pos))
            elif seg.matches(segment):
                nxt.add((pi, pos + 1))
        return self._closure(nxt)

    def accepted(self, state: State) -> list[int]:
        """Indices of the patterns that match the current node exactly (sorted)."""
        return self._accepted[state]

    def accepts(self, state: State) -> bool:
        """Whether any pattern matches the current node."""
        return bool(self._accepted[state])

    def match(self, segments: Iterable[str | int]) -> bool:
        """Whether a pattern matches the path or one of its ancestors (i.e. covers the node)."""
        state = self.start
        if self.accepts(state):
            return True
        for seg in segments:
            state = self.step(state, str(seg))
            if not state:
                return False
            if self.accepts(state):
                return True
        return False
