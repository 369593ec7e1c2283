"""The terraform step's plan gate: `python -m policies.plan_gate` in a child process, failing
closed.

The execute role never loads regopy (it must never share a process with torch, and the role's
import guard refuses it), so a saved plan is judged by a short-lived child that loads the
compliance controls and the `infrastructure` Rego policies (a process boundary, not an import:
the runbooks layer stays free of policies). Any error, timeout or unreadable answer is a denial.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from runbooks import children
from runbooks.effectors import TerraformConfig
from runbooks.steps.verdict import PlanVerdict

__all__ = ["SubprocessPlanGate"]


class SubprocessPlanGate:
    """`PlanGate` that asks `python -m policies.plan_gate` (compliance + Rego) in a child."""

    def __init__(self, config: TerraformConfig, python: str = sys.executable) -> None:
        self.config = config
        self.python = python

    def argv(self, plan: Path, context: Path) -> list[str]:
        args = [self.python, "-m", "policies.plan_gate", str(plan), "--context", str(context)]
        for folder in self.config.policy_dirs:
            args += ["--policies", str(Path(folder).resolve())]
        for severity in self.config.block_severities:
            args += ["--block", severity]
        return args

    async def check(self, plan: Mapping[str, Any], context: Mapping[str, Any]) -> PlanVerdict:
        folder = Path(tempfile.mkdtemp(prefix="novacron-gate-"))
        try:
            (folder / "plan.json").write_bytes(orjson.dumps(plan))
            (folder / "context.json").write_bytes(orjson.dumps(context))
            return await self._ask(self.argv(folder / "plan.json", folder / "context.json"))
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    async def _ask(self, argv: list[str]) -> PlanVerdict:
        try:
            proc = await children.start(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
        except OSError as exc:
            return PlanVerdict(False, [f"plan gate could not start: {exc.strerror or exc}"])
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.config.gate_timeout)
        except TimeoutError:
            await children.kill_group(proc)
            return PlanVerdict(False, [f"plan gate timed out after {self.config.gate_timeout:g}s"])
        try:
            answer = orjson.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            text = err.decode(errors="replace").strip()[-500:]
            return PlanVerdict(False, [f"plan gate failed (exit {proc.returncode}): {text}"])
        allowed = proc.returncode == 0 and answer.get("allowed") is True
        return PlanVerdict(allowed, [str(r) for r in answer.get("reasons") or []],
                           {"violations": answer.get("violations") or [],
                            "policy_versions": answer.get("policy_versions") or {}})
