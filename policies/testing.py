"""`opa test` for regopy: discover `test_*` rules in *_test.rego files and evaluate each."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from policies._rego_input import new_interpreter
from policies.source import package_of

__all__ = ["TestCase", "discover", "run_file", "run_path"]

_TEST_RULE = re.compile(r"^\s*(test_\w+)\b", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class TestCase:
    """One Rego test and its result."""

    __test__ = False  # not a pytest class

    file: str
    """The *_test.rego file."""
    name: str
    """`package.test_rule`."""
    status: Literal["PASS", "FAIL", "ERROR"]
    """PASS: true; FAIL: false or undefined; ERROR: compile/runtime error or an engine crash."""
    detail: str = ""
    """Why it failed or errored."""
    duration_ms: float = 0.0
    """Evaluation time."""


def discover(root: Path) -> list[Path]:
    """Every *_test.rego file under root (root may be a single file)."""
    if root.is_file():
        return [root]
    return sorted(root.rglob("*_test.rego"))


def _modules_for(test_file: Path, source: str) -> list[Path]:
    # The test file, its subject (x.rego beside x_test.rego) and the folder's other modules whose
    # package the test or subject references; unrelated broken modules must not fail this file.
    subject = test_file.with_name(test_file.name.removesuffix("_test.rego") + ".rego")
    mentioned = source + (subject.read_text(encoding="utf-8") if subject.exists() else "")
    chosen = [test_file] + ([subject] if subject.exists() else [])
    for other in sorted(test_file.parent.glob("*.rego")):
        if other in chosen or other.stem.endswith("_test"):
            continue
        try:
            package = package_of(other.read_text(encoding="utf-8"))
        except Exception:  # noqa: S112 - a module without a package cannot be referenced
            continue
        if f"data.{package}" in mentioned:
            chosen.append(other)
    return chosen


def _evaluate_in_process(test_file: Path) -> list[TestCase]:
    source = test_file.read_text(encoding="utf-8")
    package = package_of(source)
    names = list(dict.fromkeys(_TEST_RULE.findall(source)))
    rego = new_interpreter(strict=True)  # the engine's semantics: a failing built-in is an error
    try:
        for module in _modules_for(test_file, source):
            rego.add_module(str(module), module.read_text(encoding="utf-8"))
        prefix = package.replace(".", "/")
        bundle = rego.build(None, [f"{prefix}/{n}" for n in names])
    except Exception as exc:  # regopy raises RegoError with the compiler's message
        return [
            TestCase(str(test_file), f"{package}.{n}", "ERROR", _first_line(exc)) for n in names
        ]
    return [_run_one(rego, bundle, str(test_file), package, n) for n in names]


def _run_one(rego: object, bundle: object, file: str, package: str, name: str) -> TestCase:
    start = time.perf_counter()
    try:
        out = rego.query_bundle_entrypoint(bundle, f"{package.replace('.', '/')}/{name}")  # type: ignore[attr-defined]
        text = str(out)
    except Exception as exc:
        return TestCase(file, f"{package}.{name}", "ERROR", _first_line(exc))
    ms = (time.perf_counter() - start) * 1000
    if not out.ok():
        return TestCase(file, f"{package}.{name}", "ERROR", text.strip().splitlines()[0], ms)
    passed = text.replace(" ", "") == '{"expressions":[true]}'
    detail = "" if passed else f"result: {text.strip()}"
    return TestCase(file, f"{package}.{name}", "PASS" if passed else "FAIL", detail, ms)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run_file(test_file: Path, *, isolate: bool = True) -> list[TestCase]:
    """Run one test file; isolated in a child process so an engine abort becomes an ERROR."""
    if not isolate:
        return _evaluate_in_process(test_file)
    proc = subprocess.run(  # noqa: S603 - our own interpreter and module, no shell
        [sys.executable, "-m", "policies.testing", str(test_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        name = f"{test_file.name} (all tests)"
        return [TestCase(str(test_file), name, "ERROR", f"the Rego engine crashed: {why}")]
    # regopy writes compiler diagnostics to stdout; our JSON report is the last line.
    lines = proc.stdout.strip().splitlines()
    return [TestCase(**row) for row in json.loads(lines[-1])]


def run_path(root: Path, *, isolate: bool = True) -> list[TestCase]:
    """Run every test file under root."""
    return [case for f in discover(root) for case in run_file(f, isolate=isolate)]


if __name__ == "__main__":  # the isolated child of run_file
    results = _evaluate_in_process(Path(sys.argv[1]))
    print(json.dumps([asdict(r) for r in results]))
