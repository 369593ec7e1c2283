"""Validation of a commit before anything is applied: Rego tests and compilation, runbooks,
exceptions. Every problem names its file; one problem rejects the whole commit.

The Rego checks need files on disk and child processes (policies/testing.py isolates each test
file, as `novacron policy test` does), so the host helper runs `RegoChecks` in a worker thread;
the rest is pure and runs in the reconciler.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from policies.compliance import ControlLibrary
from runbooks.engine import Engine
from runbooks.model import Runbook
from runbooks.model import ValidationError as RunbookInvalid
from runbooks.runtime import EngineConfig
from schemas.attestations import ComplianceAttestation

__all__ = [
    "MAX_EXCEPTION_DAYS",
    "FakePolicyChecks",
    "PolicyChecks",
    "RegoChecks",
    "exception_problems",
    "runbook_problems",
]

MAX_EXCEPTION_DAYS = 3 * 365
"""No risk is accepted for longer (as through the API: agents/compliance_api.py)."""
_RUN_TIME_ONLY = ("missing variable", "is not set")  # given by the action or the environment


class PolicyChecks(Protocol):
    """Rego modules and their tests of one commit → problems (empty: all compile and pass)."""

    def check(self, modules: Mapping[str, str], tests: Mapping[str, str]) -> list[str]: ...


class RegoChecks:
    """The real checks: every module compiles (with the commit's other modules), and every
    `test_*` rule of every `*_test.rego` passes under regopy, each test file in a child process."""

    def check(self, modules: Mapping[str, str], tests: Mapping[str, str]) -> list[str]:
        from policies.engine import compile_errors
        from policies.testing import run_path

        problems = []
        for path, rego in sorted(modules.items()):
            others = [text for p, text in modules.items() if p != path]
            problems += [f"{path}: does not compile: {e}" for e in compile_errors(rego, others)]
        if not tests:
            return problems
        with tempfile.TemporaryDirectory(prefix="novacron-rego-") as tmp:
            root = Path(tmp)
            for path, text in {**modules, **tests}.items():
                target = root / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
            for case in run_path(root):
                if case.status != "PASS":
                    where = Path(case.file).relative_to(root)
                    problems.append(f"{where}: {case.name} {case.status}"
                                    + (f": {case.detail}" if case.detail else ""))
        return problems


class FakePolicyChecks:
    """For unit tests: the problems to report for each module path (default none)."""

    def __init__(self, problems: Mapping[str, list[str]] | None = None) -> None:
        self.problems = dict(problems or {})
        self.calls = 0

    def check(self, modules: Mapping[str, str], tests: Mapping[str, str]) -> list[str]:
        self.calls += 1
        return [p for path in sorted({*modules, *tests}) for p in self.problems.get(path, [])]


def runbook_problems(book: Runbook, source: str, known: Callable[[str], Runbook]) -> list[str]:
    """What `novacron runbook validate` reports, less what only a run can supply (variables the
    action sets, secrets from the environment)."""
    engine = Engine(EngineConfig(default_webhook_url="http://placeholder"), resolve=known)
    try:
        engine.validate(book, {})
    except RunbookInvalid as exc:
        return [f"{source}: {p}" for p in exc.problems if not any(w in p for w in _RUN_TIME_ONLY)]
    return []


def exception_problems(record: ComplianceAttestation, source: str,
                       controls: ControlLibrary | None, now: datetime) -> list[str]:
    """An acceptance must name an automated control and expire within three years from now."""
    problems = []
    control = controls.controls.get(record.control_id) if controls is not None else None
    if controls is not None and (control is None or control.kind != "automated"):
        problems.append(f"{source}: no automated control {record.control_id!r} to accept")
    if not now < record.expires_at <= now + timedelta(days=MAX_EXCEPTION_DAYS):
        problems.append(f"{source}: {record.control_id}/{record.resource_id} expires_at must be "
                        "in the future and within three years")
    return problems
