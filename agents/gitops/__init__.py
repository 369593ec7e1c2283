"""GitOps: a config repository drives the registries; deploys are watched and rolled back."""

from __future__ import annotations

from agents.gitops.checks import FakePolicyChecks, PolicyChecks, RegoChecks
from agents.gitops.config import DeployWatchConfig, GitopsConfig
from agents.gitops.objects import GitObject, live_digests
from agents.gitops.plan import Commit, Record, SyncPlan, build_plan
from agents.gitops.reconciler import GitopsReconciler
from agents.gitops.source import FOLDERS, RepoContent, read_repository

__all__ = [
    "FOLDERS",
    "Commit",
    "DeployWatchConfig",
    "FakePolicyChecks",
    "GitObject",
    "GitopsConfig",
    "GitopsReconciler",
    "PolicyChecks",
    "Record",
    "RegoChecks",
    "RepoContent",
    "SyncPlan",
    "build_plan",
    "live_digests",
    "read_repository",
]
