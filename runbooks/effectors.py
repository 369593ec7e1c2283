"""Settings of the effector step types (git, terraform, kubernetes, aws): binaries, auth, limits.

Endpoints a runbook acts on (a config repository URL, a Terraform working directory, a
Kubernetes namespace) are runbook parameters of kind `endpoint`, set from `executor.defaults`;
what is here is how the executor reaches those systems at all.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pydantic import BaseModel, Field

__all__ = [
    "AwsConfig",
    "EffectorsConfig",
    "GitConfig",
    "KubernetesConfig",
    "TerraformConfig",
    "default_terraform",
]

CACHE_BIN = Path.home() / ".cache" / "novacron" / "bin"
"""Where deploy/local/install.sh builds Terraform and OPA (outside the checkout)."""


def default_terraform() -> str:
    """`NOVACRON_TERRAFORM`, else the install script's build, else `terraform` on PATH."""
    given = os.environ.get("NOVACRON_TERRAFORM")
    if given:
        return given
    built = CACHE_BIN / "terraform"
    if built.is_file():
        return str(built)
    return shutil.which("terraform") or "terraform"


class GitConfig(BaseModel):
    """How `git` steps commit and push."""

    binary: str = "git"
    """The git executable."""
    author_name: str = "NovaCron"
    """Author and committer name of effector commits."""
    author_email: str = "novacron@localhost"
    """Author and committer e-mail of effector commits."""
    push_attempts: int = Field(default=5, ge=1, le=50)
    """Attempts to push when the branch moved meanwhile (fetch, re-apply, push again)."""
    max_file_bytes: int = Field(default=1_048_576, ge=1)
    """Largest file a git step reads or writes."""
    timeout: float = Field(default=120.0, gt=0)
    """Seconds one git command may take."""
    max_batch: int = Field(default=32, ge=1, le=1000)
    """Most commit steps on one remote branch that share a clone, a push and the verifying
    fetch (each keeps its own commit and post-condition); 1: every step pushes alone."""
    keep_clone: bool = True
    """Keep one clone per remote branch between batches (fetched, and reset when the remote
    moved, before each); false: a fresh clone for every batch. A kept clone is removed when
    anything in a batch fails, and when the worker exits."""


class TerraformConfig(BaseModel):
    """How `terraform` steps run the CLI and which policies judge a saved plan."""

    binary: str = Field(default_factory=default_terraform)
    """Terraform CLI (1.5.7, MPL-2.0); `NOVACRON_TERRAFORM` or ~/.cache/novacron/bin/terraform."""
    timeout: float = Field(default=900.0, gt=0)
    """Seconds one terraform command may take."""
    policy_dirs: list[Path] = Field(default_factory=list)
    """Folders of Rego policies (type `infrastructure`) the plan gate evaluates with the
    compliance control library; empty: the shipped policies/rego."""
    block_severities: list[str] = Field(default_factory=lambda: ["CRITICAL", "HIGH", "MEDIUM"])
    """Compliance violations of these severities in a plan block its apply."""
    gate_timeout: float = Field(default=120.0, gt=0)
    """Seconds the plan gate (a child process: the execute role never loads regopy) may take."""


class KubernetesConfig(BaseModel):
    """How `kubernetes` steps reach the API server (the official client's own auth)."""

    kubeconfig: Path | None = None
    """kubeconfig file; unset: in-cluster service account when running in a pod, else
    `$KUBECONFIG` / ~/.kube/config."""
    context: str | None = None
    """kubeconfig context (default: its current context)."""
    timeout: float = Field(default=30.0, gt=0)
    """Seconds per API request."""


class AwsConfig(BaseModel):
    """How `aws` steps reach AWS through boto3 (credentials: boto3's default chain)."""

    region: str = "us-east-1"
    """Region of every call."""
    endpoint_url: str | None = None
    """Another endpoint (a moto server, LocalStack, a VPC endpoint); unset: AWS itself."""
    timeout: float = Field(default=30.0, gt=0)
    """Connect and read timeout per call, seconds."""


class EffectorsConfig(BaseModel):
    """Every effector's settings (`executor.engine.effectors`)."""

    git: GitConfig = Field(default_factory=GitConfig)
    """git steps."""
    terraform: TerraformConfig = Field(default_factory=TerraformConfig)
    """terraform steps."""
    kubernetes: KubernetesConfig = Field(default_factory=KubernetesConfig)
    """kubernetes steps."""
    aws: AwsConfig = Field(default_factory=AwsConfig)
    """aws steps."""
