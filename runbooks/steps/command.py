"""Command steps: an argv list run with create_subprocess_exec, never through a shell."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from typing import Any

from runbooks import children
from runbooks.runtime import EngineConfig, StepContext
from schemas.errors import NonRetryableError, RetryableError

__all__ = ["child_env", "executable_allowed", "expected_exit_codes", "run_command"]

_KEEP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "NOVACRON_FAKE_INFRA_LOG")


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """A small environment: no NOVACRON_SECRET_* leaks into children unless a step passes it."""
    env = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
    env.update(extra)
    return env


def executable_allowed(argv0: str, config: EngineConfig) -> bool:
    """Whether the allow-list (if any) admits this executable."""
    allowed = config.allowed_executables
    if allowed is None:
        return True
    return argv0 in allowed or os.path.basename(argv0) in allowed and "/" not in argv0


def expected_exit_codes(params: Mapping[str, Any]) -> frozenset[int]:
    """Exit codes that mean success: `parameters.expect_exit_codes` (literal, checked when the
    runbook is validated), else 0 only. `pg_isready` exits 2 when the server does not answer:
    a step that detects a failure expects [1, 2]."""
    raw = params.get("expect_exit_codes")
    return frozenset({0}) if raw is None else frozenset(int(c) for c in raw)


def render_argv(ctx: StepContext) -> list[str]:
    """Fill each template argument on its own: a value can never become two arguments."""
    argv = [ctx.interp.text(arg) for arg in ctx.step.argv]
    if argv and argv[0] == "python":
        argv[0] = ctx.config.python_executable
    return argv


def _check(argv: Sequence[str], ctx: StepContext) -> None:
    if not argv:
        raise NonRetryableError(f"step {ctx.step.id}: command has no argv")
    if not executable_allowed(ctx.step.argv[0], ctx.config):
        raise NonRetryableError(f"step {ctx.step.id}: executable {argv[0]!r} is not allowed")
    if any("\x00" in a for a in argv):
        raise NonRetryableError(f"step {ctx.step.id}: an argument contains a NUL byte")


async def run_command(ctx: StepContext) -> dict[str, Any]:
    """Run the step's argv; an unexpected exit code is retryable unless listed non-retryable."""
    argv = render_argv(ctx)
    _check(argv, ctx)
    env = child_env({str(k): str(v) for k, v in (ctx.param("env") or {}).items()})
    try:
        proc = await children.start(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=ctx.param("cwd"),
        )
    except OSError as exc:  # not found, not executable, argument too long
        raise NonRetryableError(f"cannot run {argv[0]!r}: {exc.strerror or exc}") from exc
    try:
        out, err = await proc.communicate()
    except BaseException:
        await children.kill_group(proc)  # a shell script's children too
        raise
    stdout = ctx.clip(out.decode(errors="replace"))
    output = {"exit_code": proc.returncode, "stdout": stdout}
    expected = expected_exit_codes(ctx.step.parameters)
    if proc.returncode in expected:
        return output
    said = ctx.clip(err.decode(errors="replace")).strip() or stdout.strip()
    wanted = "" if expected == {0} else f" (expected {', '.join(map(str, sorted(expected)))})"
    message = f"exit code {proc.returncode}{wanted}" + (f": {said}" if said else "")
    if proc.returncode in ctx.step.policy.non_retryable_exit_codes:
        raise NonRetryableError(message)
    raise RetryableError(message)
