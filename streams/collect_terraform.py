"""`collect terraform`'s I/O: run `terraform plan -refresh-only` in a folder, read its drift.

The Terraform CLI runs with an argv list (never a shell), `-input=false`, in automation mode, with
a timeout; its errors are raised with Terraform's own diagnostics, never swallowed.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import orjson

from agents.collectors.terraform_plan import RefreshReport, drift_changes, parse_stream
from schemas import ConfigChange
from schemas.errors import NonRetryableError

__all__ = ["Refresh", "TerraformError", "refresh"]


class TerraformError(NonRetryableError):
    """Terraform failed: the message holds its diagnostics (or its output)."""


@dataclass(frozen=True)
class Refresh:
    """One refresh-only plan: the changes found and Terraform's warnings."""

    changes: list[ConfigChange]
    warnings: list[str]


def _run(binary: Path, folder: Path, args: list[str], timeout: float
         ) -> subprocess.CompletedProcess[bytes]:
    env = os.environ | {"TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
    try:
        return subprocess.run([str(binary), f"-chdir={folder}", *args], env=env,  # noqa: S603
                              capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise TerraformError(f"no Terraform CLI at {binary} (settings terraform_bin; build 1.5.7 "
                             "with deploy/local/install.sh)") from exc
    except subprocess.TimeoutExpired as exc:
        raise TerraformError(f"terraform {args[0]} did not finish within {timeout:.0f}s") from exc


def _failure(what: str, report: RefreshReport, proc: subprocess.CompletedProcess[bytes]) -> str:
    said = [str(d) for d in report.errors] or report.unparsed[-10:] or \
        proc.stderr.decode("utf-8", "replace").strip().splitlines()[-10:]
    return f"terraform {what} failed (exit code {proc.returncode}):\n" + "\n".join(said)


def refresh(folder: Path, binary: Path, *, actor: str = "terraform-refresh",
            timeout: float = 600.0) -> Refresh:
    """Changes of the real resources against the state of `folder`; TerraformError on failure."""
    if not folder.is_dir():
        raise TerraformError(f"{folder} is not a folder")
    with tempfile.TemporaryDirectory(prefix="novacron-tf-") as tmp:
        plan_file = Path(tmp) / "refresh.tfplan"
        proc = _run(binary, folder, ["plan", "-refresh-only", "-json", "-input=false",
                                     "-no-color", f"-out={plan_file}"], timeout)
        report = parse_stream(proc.stdout.splitlines())
        if proc.returncode != 0 or report.errors:
            raise TerraformError(_failure("plan -refresh-only", report, proc))
        warnings = [str(d) for d in report.diagnostics if d.severity == "warning"]
        if not report.drifted:
            return Refresh([], warnings)
        shown = _run(binary, folder, ["show", "-json", "-no-color", str(plan_file)], timeout)
        if shown.returncode != 0:
            raise TerraformError(_failure("show -json", RefreshReport(), shown))
    try:
        document = orjson.loads(shown.stdout)
    except orjson.JSONDecodeError as exc:
        raise TerraformError(f"terraform show -json printed no JSON: {exc}") from exc
    return Refresh(drift_changes(document, actor=actor), warnings)
