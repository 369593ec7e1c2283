"""Step handlers by step type."""

from __future__ import annotations

from runbooks.runtime import StepHandler
from runbooks.steps.argocd import run_argocd
from runbooks.steps.aws import run_aws
from runbooks.steps.command import run_command
from runbooks.steps.control import run_approval, run_kafka, run_noop, run_sleep, run_workflow
from runbooks.steps.gitrevert import run_git
from runbooks.steps.kubernetes import run_kubernetes
from runbooks.steps.terraform import terraform_handler
from runbooks.steps.web import run_http, run_notification

__all__ = ["HANDLERS"]

HANDLERS: dict[str, StepHandler] = {
    "command": run_command,
    "http": run_http,
    "notification": run_notification,
    "kafka": run_kafka,
    "approval": run_approval,
    "workflow": run_workflow,
    "argocd": run_argocd,
    "noop": run_noop,
    "sleep": run_sleep,
    "git": run_git,
    "terraform": terraform_handler(),  # plans judged by `python -m policies.plan_gate`
    "kubernetes": run_kubernetes,
    "aws": run_aws,
}
"""The built-in step types (runbooks.model.STEP_TYPES)."""
