"""Issue 11, finding 7 (shells): a `${var}` handed to an interpreter as code is refused by
validation (and so by the executor) unless the step is reviewed; event data never reaches it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents.executor import Executor, ExecutorConfig, InMemoryJournal
from runbooks.engine import Engine
from runbooks.loader import Library, parse_runbook
from runbooks.model import Runbook, ValidationError
from runbooks.shell import script_references
from schemas import Event, Outcome
from tests.unit.test_runbooks_injection import RAW, materialise
from tests.unit.test_runbooks_support import approved

# A class, not a list of two: shells and their wrappers, script interpreters, remote shells.
FLAGGED = [
    ["sh", "-c", "echo ${x}"],
    ["bash", "-c", "echo ${x}"],
    ["zsh", "-c", "echo ${x}"],
    ["dash", "-c", "echo ${x}"],
    ["ksh", "-c", "echo ${x}"],
    ["/bin/sh", "-c", "echo ${x}"],
    ["/usr/bin/bash", "-euo", "pipefail", "-c", "echo ${x}"],
    ["bash", "-ec", "echo ${x}"],
    ["bash", "-lc", "run ${x}"],
    ["bash", "--norc", "-c", "echo ${x}"],
    ["sh", "-c", "--", "echo ${x}"],
    ["busybox", "sh", "-c", "echo ${x}"],
    ["busybox", "ash", "-c", "echo ${x}"],
    ["env", "sh", "-c", "echo ${x}"],
    ["env", "-i", "PATH=/bin", "bash", "-c", "echo ${x}"],
    ["/usr/bin/env", "-u", "HOME", "zsh", "-c", "echo ${x}"],
    ["timeout", "5", "sh", "-c", "echo ${x}"],
    ["timeout", "-s", "KILL", "5", "sh", "-c", "echo ${x}"],
    ["nice", "-n", "10", "sh", "-c", "echo ${x}"],
    ["nohup", "setsid", "sh", "-c", "echo ${x}"],
    ["sudo", "-u", "root", "sh", "-c", "echo ${x}"],
    ["xargs", "-I{}", "sh", "-c", "echo {} ${x}"],
    ["kubectl", "exec", "-it", "pod-1", "--", "sh", "-c", "echo ${x}"],
    ["docker", "exec", "-e", "A=1", "web", "bash", "-c", "echo ${x}"],
    ["find", ".", "-name", "*.log", "-exec", "sh", "-c", "rm ${x}", ";"],
    ["python", "-c", "print('${x}')"],
    ["python3", "-c", "print('${x}')"],
    ["/usr/bin/python3.11", "-I", "-c", "print('${x}')"],
    ["python", "-cprint('${x}')"],
    ["python", "-m", "${x}"],
    ["python", "${x}"],
    ["perl", "-e", "print '${x}'"],
    ["perl", "-ne", "print if /${x}/"],
    ["ruby", "-e", "puts '${x}'"],
    ["node", "-e", "console.log('${x}')"],
    ["node", "--eval=console.log('${x}')"],
    ["node", "-pe", "'${x}'"],
    ["php", "-r", "echo '${x}';"],
    ["lua", "-e", "print('${x}')"],
    ["awk", "{print \"${x}\"}"],
    ["awk", "-F:", "{print \"${x}\"}", "/etc/passwd"],
    ["sed", "-e", "s/a/${x}/"],
    ["sed", "s/a/${x}/e", "file"],
    ["pwsh", "-Command", "Write-Output ${x}"],
    ["powershell", "-c", "echo ${x}"],
    ["cmd", "/c", "echo ${x}"],
    ["bash", "/opt/scripts/${x}.sh"],
    ["ssh", "host-1", "systemctl restart ${x}"],
    ["ssh", "-p", "2222", "admin@host", "echo", "${x}"],
    ["watch", "-n", "5", "curl ${x}"],
    ["su", "-c", "echo ${x}", "root"],
    ["psql", "--host=db", "-c", "DELETE FROM t WHERE id = '${x}'"],
    ["psql", "-h", "db", "--command=SELECT '${x}'"],
    ["psql", "-XAtc", "SELECT '${x}'"],
    ["psql", "-f", "/opt/sql/${x}.sql"],
    ["psql", "orders", "-c", "SELECT '${x}'"],
    ["mysql", "-e", "SELECT '${x}'"],
    ["clickhouse-client", "--query", "SELECT '${x}'"],
]
CLEAN = [
    ["python", "-m", "runbooks.fake_infra", "scale", "--service=${x}"],
    ["sh", "-c", 'echo "$1"', "sh", "${x}"],  # the value is an argument, not code
    ["bash", "/opt/scripts/restart.sh", "--service=${x}"],
    ["python", "-c", "import sys; print(sys.argv[1])", "${x}"],
    ["awk", "-v", "name=${x}", "{print name}", "file"],
    ["kubectl", "scale", "deployment/web", "--replicas=${x}"],
    ["kubectl", "get", "node", "${x}"],
    ["git", "commit", "-m", "${x}"],
    ["sh", "-c", "echo ${secret:TOKEN}"],  # a secret is not event data
    ["env", "X=${x}", "printenv", "X"],
    ["psql", "--host=${x}", "--port=${x}", "--username=${x}", "--command=SELECT 1", "${x}"],
    ["psql", "-h", "${x}", "-d", "${x}", "-v", "id=${x}", "-c", "SELECT :'id'"],
    ["mysql", "-h", "${x}", "-e", "SELECT 1", "${x}"],
]


@pytest.mark.parametrize("argv", FLAGGED, ids=[" ".join(a)[:40] for a in FLAGGED])
def test_code_arguments_with_variables_are_found(argv: list[str]) -> None:
    found = script_references(argv)
    assert found and "${x}" in found[0][1], found


@pytest.mark.parametrize("argv", CLEAN, ids=[" ".join(a)[:40] for a in CLEAN])
def test_data_arguments_are_not_flagged(argv: list[str]) -> None:
    assert script_references(argv) == []


def shell_book(action: Any, overridable: bool = False, reviewed: str | None = None,
               where: str = "step") -> Runbook:
    step: dict[str, Any] = {"id": "s", "action_type": "command", "action": ["true"]}
    target = step
    if where == "compensation":
        step["compensation"] = target = {"action_type": "command"}
    target["action"] = action
    if reviewed:
        target["shell_reviewed"] = reviewed
    return parse_runbook({
        "metadata": {"id": "sh", "selectable": True}, "steps": [step],
        "parameters": {"x": {"type": "string", "default": "a", "overridable": overridable}},
    })


def problems(book: Runbook) -> list[str]:
    with pytest.raises(ValidationError) as info:
        Engine().validate(book, {})
    return info.value.problems


@pytest.mark.parametrize("where", ["step", "compensation"])
def test_validation_refuses_unreviewed_interpolation_into_code(where: str) -> None:
    book = shell_book('sh -c "deploy ${x}"', where=where)
    found = problems(book)
    assert len(found) == 1
    assert "sh runs 'deploy ${x}' as code" in found[0] and "shell_reviewed" in found[0]


def test_reviewed_step_passes_for_fixed_values_only() -> None:
    reason = "x is fixed in this file and quoted by the script"
    Engine().validate(shell_book('sh -c "deploy ${x}"', reviewed=reason), {})
    with pytest.raises(ValidationError, match="must not be overridable by events"):
        shell_book('sh -c "deploy ${x}"', overridable=True, reviewed=reason)


def test_a_reason_is_required_to_mark_a_step_reviewed() -> None:
    with pytest.raises(ValidationError, match="too short|at least 10 characters"):
        shell_book('sh -c "deploy ${x}"', reviewed="yes")
    with pytest.raises(ValidationError):
        parse_runbook({"metadata": {"id": "t"}, "steps": [
            {"id": "s", "action_type": "command", "action": "true", "shell_reviewed": True}]})


def test_cli_validate_names_the_step(tmp_path: Path) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump({
        "metadata": {"id": "deploy"},
        "parameters": {"version": {"type": "string", "default": "1"}},
        "steps": [{"id": "roll", "action_type": "command",
                   "action": "bash -c 'helm upgrade web --version ${version}'"}]}))
    proc = subprocess.run([sys.executable, "-m", "streams.cli.main", "runbook", "validate",
                           str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "step roll: bash runs 'helm upgrade web --version ${version}' as code" in (
        " ".join(proc.stderr.split()))


def test_event_parameter_in_shell_code_does_not_even_load() -> None:
    with pytest.raises(ValidationError, match="parameter x is used as sh runs 'deploy ..x.' as "
                                              "code .code. and must not be overridable"):
        shell_book('sh -c "deploy ${x}"', overridable=True)


async def test_injection_corpus_through_a_shell_runbook_runs_nothing(tmp_path: Path) -> None:
    # the runbook: `sh -c "… ${p} …"`, through which 14 of 50 payloads ran on main
    canary = tmp_path / "canary"
    rec = tmp_path / "rec.txt"
    step = {"id": "c", "action_type": "command",
            "action": ["sh", "-c", f"echo ${{p}} >> {rec}"]}
    data: dict[str, Any] = {"metadata": {"id": "shelly", "selectable": True}, "steps": [step],
                            "parameters": {"p": {"type": "string", "default": "",
                                                 "overridable": True}}}
    with pytest.raises(ValidationError, match="must not be overridable by events"):
        parse_runbook(data)  # an event parameter in shell code: refused when loaded
    data["parameters"]["p"]["overridable"] = False  # fixed, unreviewed: loads, never runs
    lib = Library([])
    lib.add(parse_runbook(data))
    resolver_refusals = 0
    events: list[Event] = []
    ex = Executor(ExecutorConfig(), journal=InMemoryJournal(), emit=events.append, library=lib)
    honest = approved(lib, "run_runbook", {"runbook": "shelly"}, action_id="honest")
    assert (await ex.handle(honest)).status == "rejected"
    for i, raw in enumerate(RAW):
        payload = materialise(raw, canary)
        with pytest.raises(Exception, match="parameter p is not overridable"):
            approved(lib, "run_runbook", {"runbook": "shelly", "p": payload})
        resolver_refusals += 1
        forged = honest.model_copy(update={"action_id": f"forged-{i}", "params": {"p": payload}})
        assert (await ex.handle(forged)).status == "rejected"
    failed = [e for e in events if isinstance(e, Outcome) and e.status == "failed"]
    assert len(failed) == len(RAW) + 1 and resolver_refusals == len(RAW)
    assert "would be parsed as code" in (failed[0].error or "")
    # a payload equal to the default ("") is not forged: it is refused like the honest action
    assert all("variables differ" in (e.error or "") or "would be parsed as code" in (e.error or "")
               for e in failed[1:])
    assert sum("variables differ" in (e.error or "") for e in failed[1:]) == sum(
        materialise(raw, canary) != "" for raw in RAW)
    assert not canary.exists() and not rec.exists()
    assert os.listdir(tmp_path) == []
    json.dumps([e.model_dump(mode="json") for e in failed])  # reasons are plain data
