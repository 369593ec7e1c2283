"""`novacron runbook run|validate|list`: values print as text (never markup), a file that is not
a runbook is never shown back, exit codes follow the workflow status."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from streams.cli.runbook import app

runner = CliRunner()
CANARY = "Zq9-canary-secret-7f3"
MARKUP = "[/bold] [red]x[/red] [link=http://e]y :x: [/]"
SAY = "import sys; print(sys.argv[1]); "


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # rich reads it per print: no wrapped lines


def invoke(*args: str) -> Result:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def printer(tmp_path: Path, code: int = 3) -> Path:
    """A runbook whose step prints its value and exits `code`; a second step succeeds first."""
    path = tmp_path / "printer.yaml"
    path.write_text(f"""\
metadata: {{id: printer, name: "{MARKUP}"}}
parameters:
  p: {{type: string, default: plain}}
steps:
  - id: first
    action_type: noop
  - id: say
    action_type: command
    action: ["{sys.executable}", "-I", "-S", "-c", "{SAY}sys.exit({code})", "${{p}}"]
    shell_reviewed: "test runbook: the value is only printed"
    dependencies: [first]
""")
    return path


def test_markup_like_values_are_printed_as_they_are(tmp_path: Path) -> None:
    result = invoke("run", str(printer(tmp_path)), "--var", f"p={MARKUP}")
    assert result.exit_code == 1  # say failed (not critical): succeeded_with_failures
    assert "succeeded_with_failures printer" in result.output
    assert f"exit code 3: {MARKUP}" in result.output


def test_markup_in_a_refused_value_and_a_runbook_name_is_printed_as_it_is(tmp_path: Path) -> None:
    result = invoke("run", str(printer(tmp_path)), "--var", f"p=-{MARKUP}")
    assert result.exit_code == 2 and f"starts with '-' ('-{MARKUP[:39]}" in result.output
    listed = invoke("list", "--dir", str(tmp_path))
    assert listed.exit_code == 0 and MARKUP in listed.output


def test_success_exits_zero_and_partial_success_does_not(tmp_path: Path) -> None:
    assert invoke("run", str(printer(tmp_path, code=0))).exit_code == 0
    assert invoke("run", str(printer(tmp_path, code=3))).exit_code == 1


@pytest.mark.parametrize("content", [
    f"root:x:0:0:{CANARY}:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n",
    f"password: {CANARY}\napi_key: {CANARY}\n",
    f"metadata: {{id: x, name: 7}}\nsteps: [{{id: a, action_type: noop, timeout: {CANARY}}}]\n"
    f"token: {CANARY}\n",
    f"- {CANARY}\n- [1, 2]\n",
    f"key: [unclosed {CANARY}\n  other: '{CANARY}\n",
    f"metadata: {{id: '{CANARY} x'}}\nsteps: [{{id: '{CANARY} y', action_type: '{CANARY}'}}]\n",
    f"{{{CANARY}: 1, 'x y {CANARY}': 2, metadata: {{id: x}}, steps: 3}}\n",
])
@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_file_that_is_not_a_runbook_is_never_shown_back(tmp_path: Path, content: str,
                                                            command: str) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text(content)
    result = invoke(command, str(secret))
    assert result.exit_code == 2 and str(secret) in result.output
    assert CANARY not in result.output and CANARY[:8] not in result.output


@pytest.mark.skipif(not Path("/etc/passwd").is_file(), reason="needs a system file to point at")
def test_run_etc_passwd_names_the_path_and_the_reason_only() -> None:
    result = invoke("run", "../../../../../../etc/passwd")
    assert result.exit_code == 2
    assert result.output.split() == [
        "invalid", "runbook", "(1", "problem(s)):", "•", "../../../../../../etc/passwd:", "not",
        "a", "runbook:", "a", "runbook", "is", "a", "YAML", "mapping", "with", "metadata", "and",
        "steps;", "this", "document", "is", "a", "str"]


@pytest.mark.parametrize(("make", "why"), [
    (lambda p: p.mkdir(), "not a regular file"),
    (lambda p: p.write_bytes(b"\x7fELF\x02\x01\x01\x00\xff\xfe" + CANARY.encode()),
     "not UTF-8 text"),
])
def test_folders_and_binary_files_are_refused_by_path_and_reason(tmp_path: Path, make: object,
                                                                 why: str) -> None:
    target = tmp_path / "thing.yaml"
    make(target)  # type: ignore[operator]
    result = invoke("run", str(target))
    assert result.exit_code == 2 and why in result.output and CANARY not in result.output


def test_an_invalid_file_in_an_extra_folder_is_reported_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(f"note: {CANARY}\n")
    result = invoke("list", "--dir", str(tmp_path))
    assert result.exit_code == 2 and "broken.yaml: not a runbook" in result.output
    assert CANARY not in result.output
