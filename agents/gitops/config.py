"""Typed configuration of the GitOps reconciler and of the deploy watch (rollback proposals)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, field_validator

__all__ = ["DeployWatchConfig", "GitopsConfig"]


class GitopsConfig(BaseModel):
    """A config repository that drives policies, runbooks, baselines, ignores and exceptions."""

    enabled: bool = False
    """Run the reconciler in the govern role (`NOVACRON_GITOPS__ENABLED=true`)."""
    repo: str = Field(default="config", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    """Name of the repository in records, metrics and `gitops status` (the `gitops` topic key)."""
    url: str = ""
    """Where to fetch from: a path, file://, https:// or ssh:// URL (credentials from git's own
    configuration: a credential helper or an SSH key, never from here)."""
    branch: str = Field(default="main", pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$")
    """The branch whose head is applied."""
    path: str = ""
    """Folder inside the repository holding policies/, runbooks/, baselines/, ignores/ and
    exceptions/ (empty: the repository root)."""
    poll_seconds: float = Field(default=60.0, gt=0)
    """How often the branch head is fetched (a push webhook triggers a fetch at once)."""
    self_heal: bool = False
    """Also re-apply objects changed out of band (through the API or CLI) on every poll; off:
    they are reported by `novacron gitops status` until the next commit touches them."""
    webhook_secret: SecretStr | None = None
    """Shared secret of the push webhook (`POST /gitops/webhook` on the govern web port):
    GitHub/Gitea `X-Hub-Signature-256` HMAC, or GitLab's `X-Gitlab-Token`. Unset: refused."""
    webhook_secret_file: Path | None = None
    """A file holding that secret (instead of the environment)."""
    max_file_bytes: int = Field(default=1_048_576, ge=1024)
    """Largest file read from the repository; a larger one rejects the commit."""
    max_files: int = Field(default=5000, ge=1)
    """Most files read from the five folders; more rejects the commit."""
    git_timeout_seconds: float = Field(default=120.0, gt=0)
    """Longest a git fetch may take before the poll is given up (and retried next time)."""

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        parts = [p for p in value.strip("/").split("/") if p]
        if any(p in (".", "..") for p in parts):
            raise ValueError("path must be a plain folder inside the repository")
        return "/".join(parts)

    def secret(self) -> str | None:
        """The webhook secret from the setting or its file; None when neither is set."""
        if self.webhook_secret is not None:
            return self.webhook_secret.get_secret_value().strip() or None
        if self.webhook_secret_file is not None and self.webhook_secret_file.is_file():
            return self.webhook_secret_file.read_text(encoding="utf-8").strip() or None
        return None


class DeployWatchConfig(BaseModel):
    """After a deploy, watch the affected resources; a breach inside the window proposes a
    rollback through the policy gate."""

    enabled: bool = True
    """Run the deploy watch in the learn role."""
    window_seconds: float = Field(default=900.0, gt=0)
    """How long after a deploy an anomaly or SLO breach is blamed on it."""
    latency_slo_ms: float | None = Field(default=None, gt=0)
    """A sample above this latency inside a window counts as an SLO breach (None: anomalies
    only)."""
    breach_samples: int = Field(default=3, ge=1)
    """Consecutive samples above the SLO that make a breach (one slow sample is noise)."""
    min_anomaly_score: float = Field(default=0.0, ge=0, le=1)
    """Anomaly insights below this score are not blamed on a deploy."""
    argocd_runbook: str = "argocd-rollback"
    """The selectable runbook that rolls an ArgoCD application back to its previous revision."""
    git_runbook: str = "gitops-revert"
    """The selectable runbook that reverts a config-repository commit (the `git` effector)."""
    apps: dict[str, list[str]] = Field(default_factory=dict)
    """ArgoCD application → the resources it deploys (default: a resource named like the app)."""
    executor_source: str = "novacron.executor"
    """The `source` of the executor's outcomes: only a verified `git` commit step outcome from
    it opens a window (on the action's resource, for the commit it made)."""
    executor_repository: str = Field(default="config",
                                     pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    """The configured name of the repository the executor's `git` steps commit to: the
    `repository` of the revert proposal (the git runbook maps names to URLs or paths)."""
    repo_resources: list[str] = Field(default_factory=list)
    """Resources watched after a policy or runbook sync of the config repository (baselines
    name their own resources)."""
