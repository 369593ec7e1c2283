"""`terraform` steps: `plan -out` → the plan JSON through the plan gate → `apply` of that plan.

    action: apply (default) | plan
    parameters:
      dir:        ${terraform_dir}       # kind endpoint: the working directory (configuration)
      variables:  {ingress: ${ingress}}  # written to a JSON var file: typed, never HCL text
      targets:    [terraform_data.web]   # each a Terraform resource address
      allow_destroy: false               # what the gate's policies see in context

The saved plan is judged by a `PlanGate` (the compliance controls and the Rego policies of type
`infrastructure`, in a child process: the execute role never loads regopy); a denied plan is
never applied. The plan file lives in a private temporary folder and its SHA-256 is checked
again right before `apply PLAN`, so what runs is exactly what was judged. Post-condition: a
fresh `plan -detailed-exitcode` with the same variables shows no change; otherwise the step fails
with the changes Terraform still wants to make.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from runbooks import children
from runbooks.effectors import TerraformConfig
from runbooks.runtime import StepContext, StepHandler
from runbooks.steps.gitrepo import PostConditionFailed
from runbooks.steps.plangate import SubprocessPlanGate
from runbooks.steps.verdict import PlanGate, PlanVerdict
from schemas.errors import NonRetryableError, RejectedError, RetryableError

__all__ = [
    "TERRAFORM_ACTIONS",
    "PlanBlocked",
    "PlanGate",
    "PlanVerdict",
    "changes_of",
    "terraform_handler",
]

TERRAFORM_ACTIONS = frozenset({"apply", "plan"})
"""What a terraform step can do (its `action`)."""
_ADDRESS = re.compile(r"(module\.[A-Za-z_][A-Za-z0-9_-]*(\[[0-9]+\]|\[\"[A-Za-z0-9_.-]+\"\])?\.)*"
                      r"[A-Za-z_][A-Za-z0-9_-]*\.[A-Za-z_][A-Za-z0-9_-]*"
                      r"(\[[0-9]+\]|\[\"[A-Za-z0-9_.-]+\"\])?")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
_ENV_KEEP = ("PATH", "HOME", "LANG", "TMPDIR", "TF_CLI_CONFIG_FILE", "TF_PLUGIN_CACHE_DIR")
_ENV_PREFIXES = ("AWS_", "GOOGLE_", "ARM_", "KUBE_")  # provider credentials, never TF_VAR_*


class PlanBlocked(RejectedError):
    """The plan gate denied the plan: it was not applied."""


def changes_of(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every planned change that is not a no-op: address, type and actions."""
    out = []
    for rc in plan.get("resource_changes") or []:
        actions = (rc.get("change") or {}).get("actions") or []
        if actions and actions != ["no-op"] and actions != ["read"]:
            out.append({"address": rc.get("address"), "type": rc.get("type"),
                        "actions": actions})
    return out


class _Terraform:
    """The CLI in one working directory, with a private folder for plans and var files."""

    def __init__(self, config: TerraformConfig, workdir: Path, private: Path) -> None:
        self.config, self.workdir, self.private = config, workdir, private

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k in _ENV_KEEP or k.startswith(_ENV_PREFIXES)}
        env.update({"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"})
        return env

    async def run(self, *args: str) -> tuple[int, str, str]:
        proc = await children.start(
            self.config.binary, *args, cwd=self.workdir, env=self._env(),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.config.timeout)
        except BaseException:
            await children.kill_group(proc)  # its providers too
            raise
        return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")

    async def check(self, *args: str, ok: tuple[int, ...] = (0,)) -> tuple[int, str]:
        code, out, err = await self.run(*args)
        if code not in ok:
            text = (err.strip() or out.strip())[-1500:]
            if "Error acquiring the state lock" in text:
                raise RetryableError(f"terraform {args[0]}: the state is locked: {text}")
            raise NonRetryableError(f"terraform {args[0]} failed ({code}): {text}")
        return code, out

    async def plan(self, common: list[str], out: Path) -> tuple[bool, dict[str, Any]]:
        """(changes pending, the plan JSON) of a plan saved to `out`."""
        code, _ = await self.check("plan", "-input=false", "-no-color", "-lock-timeout=60s",
                                   "-detailed-exitcode", f"-out={out}", *common, ok=(0, 2))
        _, shown = await self.check("show", "-json", "-no-color", str(out))
        return code == 2, orjson.loads(shown)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _common_args(ctx: StepContext, private: Path) -> list[str]:
    args = []
    variables = ctx.step.parameters.get("variables") or {}
    if not isinstance(variables, Mapping):
        raise NonRetryableError(f"step {ctx.step.id}: parameters.variables must be a mapping")
    if variables:
        bad = [n for n in variables if not _VAR_NAME.fullmatch(str(n))]
        if bad:
            raise NonRetryableError(f"step {ctx.step.id}: {bad[0]!r} is not a variable name")
        values = {str(k): ctx.interp.value(v) for k, v in variables.items()}
        var_file = private / "novacron.tfvars.json"
        var_file.write_bytes(orjson.dumps(values))  # JSON: a value can never become HCL
        args.append(f"-var-file={var_file}")
    for target in ctx.step.parameters.get("targets") or []:
        address = ctx.interp.text(str(target))
        if not _ADDRESS.fullmatch(address):
            raise NonRetryableError(f"step {ctx.step.id}: {ctx.redactor.text(address)[:80]!r} is "
                                    "not a Terraform resource address")
        args.append(f"-target={address}")
    if ctx.param("refresh", True) is False:
        args.append("-refresh=false")
    return args


def _workdir(ctx: StepContext) -> Path:
    raw = str(ctx.param("dir") or "")
    path = Path(raw)
    if not raw or not path.is_absolute() or not path.is_dir():
        raise NonRetryableError(f"step {ctx.step.id}: parameters.dir must be an existing "
                                f"absolute directory, not {raw!r}")
    return path


@contextlib.asynccontextmanager
async def _private() -> AsyncIterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="novacron-tf-"))  # mode 0700: only this user
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def terraform_handler(gate: PlanGate | None = None) -> StepHandler:
    """The terraform step handler judging plans with `gate` (default: `python -m
    policies.plan_gate` in a child process, with the engine's terraform settings)."""

    async def run_terraform(ctx: StepContext) -> dict[str, Any]:
        op = str(ctx.step.action or "apply")
        if op not in TERRAFORM_ACTIONS:
            raise NonRetryableError(f"step {ctx.step.id}: unknown terraform action {op!r}")
        async with _private() as private:
            tf = _Terraform(ctx.config.effectors.terraform, _workdir(ctx), private)
            common = _common_args(ctx, private)
            await tf.check("init", "-input=false", "-no-color")
            judge = gate or SubprocessPlanGate(ctx.config.effectors.terraform)
            return await _plan_and_apply(ctx, tf, common, private / "novacron.tfplan", judge,
                                         op)

    return run_terraform


async def _plan_and_apply(ctx: StepContext, tf: _Terraform, common: list[str], plan_file: Path,
                          gate: PlanGate, op: str) -> dict[str, Any]:
    pending, plan = await tf.plan(common, plan_file)
    changes = changes_of(plan)
    out: dict[str, Any] = {"operation": op, "changes": changes}
    if not pending:
        return {**out, "applied": False, "verified": True, "reason": "no changes"}
    digest = _digest(plan_file)
    verdict = await gate.check(plan, _gate_context(ctx))
    out["gate"] = {"allowed": verdict.allowed, "reasons": verdict.reasons}
    if not verdict.allowed:
        raise PlanBlocked(f"step {ctx.step.id}: the plan gate denied the plan: "
                          + "; ".join(verdict.reasons or ["no reason given"]))
    if op == "plan":
        return {**out, "applied": False}
    if _digest(plan_file) != digest:
        raise NonRetryableError(f"step {ctx.step.id}: the saved plan changed after it was judged")
    await tf.check("apply", "-input=false", "-no-color", "-lock-timeout=60s", str(plan_file))
    still, after = await tf.plan(common, plan_file.with_suffix(".check"))
    if still:
        raise PostConditionFailed(f"step {ctx.step.id}: after apply, terraform plan still "
                                  f"wants changes: {changes_of(after)}")
    return {**out, "applied": True, "verified": True, "plan_sha256": digest}


def _gate_context(ctx: StepContext) -> dict[str, Any]:
    return {
        "action_id": ctx.action_id,
        "action_type": str(getattr(ctx.parent, "action_type", "")),
        "resource_id": str(getattr(ctx.parent, "resource_id", "")),
        "step": ctx.step.id,
        "allow_destroy": bool(ctx.param("allow_destroy", False)),
    }
