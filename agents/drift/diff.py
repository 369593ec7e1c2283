"""Recursive diff of two normalised configs: RFC 6901 paths, ignores, list modes and leaf counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from agents.drift.pointer import Matcher, State, format_pointer

__all__ = ["Change", "DiffResult", "DiffSpec", "Differ", "ListMode"]

ListMode = Literal["index", "set", "key"]
Op = Literal["added", "removed", "changed"]
_MISSING: Any = object()
_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


@dataclass(frozen=True)
class Change:
    """One drifted node: its pointer, what happened, the old and new values (ignores stripped)."""

    path: str
    op: Op
    old: Any
    new: Any
    leaves: int = 1
    sensitive: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The wire form used in `DriftFinding.changes`."""
        return {"path": self.path, "op": self.op, "old": self.old, "new": self.new}


@dataclass
class DiffResult:
    """The changes plus the leaf counts the severity is computed from."""

    changes: list[Change] = field(default_factory=list)
    total_leaves: int = 0
    """Leaves in the union of baseline and current, after ignores."""
    drifted_leaves: int = 0
    """Leaves under a change."""

    @property
    def ratio(self) -> float:
        """Drifted share of leaf fields in [0, 1]."""
        if not self.total_leaves:
            return 1.0 if self.changes else 0.0
        return min(1.0, self.drifted_leaves / self.total_leaves)

    @property
    def sensitive(self) -> bool:
        """Whether any change touches a security/authentication path."""
        return any(c.sensitive for c in self.changes)


@dataclass(frozen=True)
class DiffSpec:
    """Compiled rules for one resource type."""

    ignore: Matcher
    """Paths whose subtree is not compared and not counted."""
    sensitive: Matcher
    """Paths whose changes are security relevant."""
    lists: Matcher
    """List paths with a non-default comparison mode."""
    list_modes: Sequence[tuple[ListMode, str]] = ()
    """(mode, key field) per pattern of `lists`, in the same order."""
    all_sensitive: bool = False
    """The whole resource type is security relevant (security groups, IAM, KMS, …)."""


@dataclass(slots=True)
class _Node:
    """Walk position: pointer segments plus the three matcher states and the sensitive flag."""

    path: tuple[str, ...]
    ign: State
    sens: State
    lst: State
    hot: bool


class Differ:
    """Compares normalised values under one `DiffSpec`. Pure; safe to reuse across calls."""

    def __init__(self, spec: DiffSpec) -> None:
        self.spec = spec

    def diff(self, old: Any, new: Any) -> DiffResult:
        """Diff two normalised configs (None means absent/empty)."""
        spec = self.spec
        root = _Node(
            (),
            spec.ignore.start,
            spec.sensitive.start,
            spec.lists.start,
            spec.all_sensitive or spec.sensitive.accepts(spec.sensitive.start),
        )
        out = DiffResult()
        self._walk(_MISSING if old is None else old, _MISSING if new is None else new, root, out)
        return out

    def _child(self, node: _Node, segment: str) -> _Node | None:
        spec = self.spec
        ign = spec.ignore.step(node.ign, segment)
        if ign and spec.ignore.accepts(ign):
            return None
        return self._descend(node, segment, ign)

    def _descend(self, node: _Node, segment: str, ign: int) -> _Node:
        spec = self.spec
        sens = spec.sensitive.step(node.sens, segment)
        hot = node.hot or (bool(sens) and spec.sensitive.accepts(sens))
        return _Node(node.path + (segment,), ign, sens, spec.lists.step(node.lst, segment), hot)

    def _walk(self, old: Any, new: Any, node: _Node, out: DiffResult) -> None:
        if old is _MISSING or new is _MISSING:
            self._one_sided(old, new, node, out)
        elif type(old) is dict and type(new) is dict:
            self._walk_dict(old, new, node, out)
        elif type(old) is list and type(new) is list:
            self._walk_list(old, new, node, out)
        elif not _is_container(old) and not _is_container(new):
            out.total_leaves += 1
            if not (old == new and type(old) is type(new)):
                out.drifted_leaves += 1
                out.changes.append(
                    Change(format_pointer(node.path), "changed", old, new, 1, node.hot)
                )
        else:
            so, lo, ho = self._measure(old, node)
            sn, ln, hn = self._measure(new, node)
            out.total_leaves += lo + ln
            out.drifted_leaves += lo + ln
            change = Change(format_pointer(node.path), "changed", so, sn, lo + ln, ho or hn)
            out.changes.append(change)

    def _walk_dict(
        self, old: dict[str, Any], new: dict[str, Any], node: _Node, out: DiffResult
    ) -> None:
        ignore = self.spec.ignore
        for key in sorted(old.keys() | new.keys()):
            ign = ignore.step(node.ign, key)
            if ign and ignore.accepts(ign):
                continue
            a, b = old.get(key, _MISSING), new.get(key, _MISSING)
            kind = type(a)
            # Hot path: an equal scalar is one clean leaf; no need to build a child node.
            if kind is type(b) and kind is not dict and kind is not list and a == b:
                out.total_leaves += 1
                continue
            self._walk(a, b, self._descend(node, key, ign), out)

    def _one_sided(self, old: Any, new: Any, node: _Node, out: DiffResult) -> None:
        if old is _MISSING and new is _MISSING:
            return
        added = old is _MISSING
        value, leaves, hot = self._measure(new if added else old, node)
        if leaves == 0:
            return  # everything under it is ignored
        out.total_leaves += leaves
        out.drifted_leaves += leaves
        path = format_pointer(node.path)
        change = (
            Change(path, "added", None, value, leaves, hot)
            if added
            else Change(path, "removed", value, None, leaves, hot)
        )
        out.changes.append(change)

    def _measure(self, value: Any, node: _Node) -> tuple[Any, int, bool]:
        """The value with ignored parts stripped, its leaf count, and whether it is sensitive."""
        kind = type(value)
        if kind is dict:
            items = ((str(k), v) for k, v in value.items())
        elif kind is list:
            items = ((str(i), v) for i, v in enumerate(value))
        else:
            return value, 1, node.hot
        stripped: list[tuple[str, Any]] = []
        leaves, hot = 0, node.hot
        for seg, item in items:
            child = self._child(node, seg)
            if child is None:
                continue
            sv, n, h = self._measure(item, child)
            stripped.append((seg, sv))
            leaves, hot = leaves + n, hot or h
        if kind is dict:
            return dict(stripped), leaves, hot
        return self._ordered([v for _, v in stripped], node), leaves, hot

    def _ordered(self, items: list[Any], node: _Node) -> list[Any]:
        """Unordered lists in canonical order, so that set elements containing them compare."""
        mode, key = self._list_mode(node)
        if mode == "set":
            return sorted(items, key=_token)
        if mode == "key" and _keyable(items, key):
            return sorted(items, key=lambda e: _token(e[key]))
        return items

    def _list_mode(self, node: _Node) -> tuple[ListMode, str]:
        accepted = self.spec.lists.accepted(node.lst) if node.lst else []
        return self.spec.list_modes[accepted[0]] if accepted else ("index", "")

    def _walk_list(self, old: list[Any], new: list[Any], node: _Node, out: DiffResult) -> None:
        mode, key = self._list_mode(node)
        if mode == "key" and _keyable(old, key) and _keyable(new, key):
            self._walk_keyed(old, new, key, node, out)
        elif mode == "set":
            self._walk_set(old, new, node, out)
        else:
            for i in range(max(len(old), len(new))):
                child = self._child(node, str(i))
                if child is not None:
                    a = old[i] if i < len(old) else _MISSING
                    b = new[i] if i < len(new) else _MISSING
                    self._walk(a, b, child, out)

    def _walk_keyed(
        self, old: list[Any], new: list[Any], key: str, node: _Node, out: DiffResult
    ) -> None:
        # Elements pair up by their key field; a changed order is not drift. Paths use the
        # current index (the baseline index for removed elements).
        new_at = {_token(e[key]): i for i, e in enumerate(new)}
        old_keys = set()
        for i, elem in enumerate(old):
            tok = _token(elem[key])
            old_keys.add(tok)
            j = new_at.get(tok)
            child = self._child(node, str(i if j is None else j))
            if child is not None:
                self._walk(elem, _MISSING if j is None else new[j], child, out)
        for j, elem in enumerate(new):
            if _token(elem[key]) not in old_keys:
                child = self._child(node, str(j))
                if child is not None:
                    self._walk(_MISSING, elem, child, out)

    def _walk_set(self, old: list[Any], new: list[Any], node: _Node, out: DiffResult) -> None:
        # Multiset comparison of elements with their ignored parts stripped, so an ignored
        # field inside an element cannot make the element look different.
        pending: dict[bytes, list[int]] = {}
        new_measured = []
        for j, elem in enumerate(new):
            child = self._child(node, str(j))
            measured = self._measure(elem, child) if child is not None else None
            new_measured.append((child, measured))
            if measured is not None and measured[1]:
                pending.setdefault(_token(measured[0]), []).append(j)
        for i, elem in enumerate(old):
            child = self._child(node, str(i))
            if child is None:
                continue
            value, leaves, hot = self._measure(elem, child)
            if not leaves:
                continue
            out.total_leaves += leaves
            matches = pending.get(_token(value))
            if matches:
                matches.pop()
                continue
            out.drifted_leaves += leaves
            out.changes.append(
                Change(format_pointer(child.path), "removed", value, None, leaves, hot)
            )
        for j in sorted(j for js in pending.values() for j in js):
            child, measured = new_measured[j]
            assert child is not None and measured is not None
            value, leaves, hot = measured
            out.total_leaves += leaves
            out.drifted_leaves += leaves
            out.changes.append(
                Change(format_pointer(child.path), "added", None, value, leaves, hot)
            )


def _is_container(value: Any) -> bool:
    return type(value) is dict or type(value) is list


def _token(value: Any) -> bytes:
    return orjson.dumps(value, option=_OPTS)


def _keyable(items: list[Any], key: str) -> bool:
    """Every element is an object with the key, and the keys are unique."""
    if not all(type(e) is dict and key in e for e in items):
        return False
    return len({_token(e[key]) for e in items}) == len(items)
