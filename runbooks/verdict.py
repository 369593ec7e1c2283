"""A workflow's final status from its steps' results: a step that did not succeed is never
reported as plain success.

- succeeded: every step succeeded or was skipped by its own `when`;
- succeeded_with_failures: every critical step did, at least one step succeeded, and a
  non-critical step did not (failed, timed out, or skipped because a dependency did not succeed);
- failed: a critical step did not succeed and nothing was compensated, a compensation failed,
  or no step succeeded while one did not;
- compensated: a critical step did not succeed and every completed step was undone.
"""

from __future__ import annotations

from collections.abc import Mapping

from runbooks.results import StepResult

__all__ = ["missed", "verdict"]

_NOT_RUN = ("dependency", "workflow failed")  # skip reasons that mean "could not run"


def missed(results: Mapping[str, StepResult]) -> dict[str, StepResult]:
    """Steps that failed, timed out, or were skipped because a dependency did not succeed or the
    workflow had failed (not those skipped by their own `when`)."""
    return {sid: r for sid, r in results.items()
            if r.status in ("failed", "timed_out")
            or (r.status == "skipped" and str(r.output.get("reason", "")).startswith(_NOT_RUN))}


def _why(result: StepResult) -> str:
    if result.status == "skipped":
        return f"skipped ({result.output.get('reason')})"
    return f"{result.status}: {result.error}" if result.error else result.status


def verdict(
    results: Mapping[str, StepResult],
    failed_critical: str | None,
    cause: StepResult | None,
    compensated: list[str],
    comp_failed: list[str],
) -> tuple[str, str | None]:
    """(status, error) of a finished run (not a dry run)."""
    if failed_critical is None:
        not_done = missed(results)
        if not not_done:
            return "succeeded", None
        why = "; ".join(f"{sid} {_why(r)}" for sid, r in not_done.items())
        if not any(r.status == "succeeded" for r in results.values()):
            return "failed", f"no step succeeded: {why}"  # nothing was done
        return "succeeded_with_failures", f"non-critical step(s) did not succeed: {why}"
    error = f"critical step {failed_critical} {cause.status if cause else 'failed'}"
    if cause and cause.error:
        error += f": {cause.error}"
    if comp_failed:
        return "failed", error + f"; compensation failed for {', '.join(comp_failed)}"
    return ("compensated" if compensated else "failed"), error
