"""Worker roles: which wiring each process loads, and which heavy libraries it must never import.

regopy and torch crash or leak when loaded in one process (PERFORMANCE-NOTES.md), so the roles
that evaluate Rego (`govern`; `ingest` for the access policies of its /sql endpoint) and the role
that may load torch (`learn`) are different processes, and every role installs an import guard
that refuses the library it must not load.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ROLES", "ForbiddenImport", "RoleSpec", "install_import_guard", "role_index"]


@dataclass(frozen=True)
class RoleSpec:
    """One worker role: its wiring modules (each has `register(app, ctx)`) and forbidden imports."""

    name: str
    description: str
    wiring: tuple[str, ...]
    forbidden: tuple[str, ...]
    uvloop: bool = True
    """Run on uvloop (faster sockets); False: the standard event loop, whose child processes can
    lead process groups of their own (runbooks/children.py: uvloop cannot start one)."""


ROLES: dict[str, RoleSpec] = {
    r.name: r
    for r in (
        RoleSpec(
            "ingest",
            "decode at the edge, dead-letter bad input, land every topic in ClickHouse; owns chDB "
            "and serves read-only /sql (authorised by the access policies, hence regopy)",
            ("streams.ingest",),
            ("torch",),
        ),
        RoleSpec(
            "learn",
            "optimizer (river) and decision engine (DQN); the only role that may load torch",
            ("streams.runner",),  # the generic host runs the role's rows of streams/wiring.py
            ("regopy",),
        ),
        RoleSpec(
            "govern",
            "policy gate, drift and compliance, the control API; evaluates Rego",
            # the host first: ctx.shared exists for the gate and the registry API
            ("streams.runner", "streams.gate", "streams.gitops"),
            ("torch",),
        ),
        RoleSpec(
            "execute",
            "executor: runs actions as runbooks and workflows, at most once per action id",
            ("streams.executor",),
            ("torch", "regopy"),
            uvloop=False,  # its effectors' programs: a process group each, not a session
        ),
        RoleSpec(
            "collect",
            "Prometheus remote-write and Alertmanager webhook receivers over HTTP → Kafka",
            ("streams.collect",),
            ("torch", "regopy"),
        ),
    )
}
"""Every role, in web-port order (role i listens on web.port + i)."""


def role_index(name: str) -> int:
    """Position of a role (its web port offset)."""
    return list(ROLES).index(name)


class ForbiddenImport(ImportError):
    """A role tried to import a library it must never load."""


class _Guard(importlib.abc.MetaPathFinder):
    def __init__(self, role: str, forbidden: Sequence[str]) -> None:
        self.role = role
        self.forbidden = frozenset(forbidden)

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname.split(".")[0] in self.forbidden:
            raise ForbiddenImport(
                f"{fullname!r} must not be imported in the {self.role!r} role: regopy and torch "
                "cannot share a process (see PERFORMANCE-NOTES.md); move this code to its role"
            )
        return None


def install_import_guard(role: str) -> None:
    """Refuse the role's forbidden libraries from now on; fail if one is already loaded."""
    spec = ROLES[role]
    loaded = [name for name in spec.forbidden if name in sys.modules]
    if loaded:
        raise ForbiddenImport(f"{loaded} already imported in the {role!r} role process")
    sys.meta_path.insert(0, _Guard(role, spec.forbidden))
