"""Configuration drift: canonical diffs against baselines, ignores, severity and remediation."""

from __future__ import annotations

from agents.drift.agent import DriftDetector
from agents.drift.baseline import (
    BaselineStore,
    accepted_baseline,
    desired_state,
)
from agents.drift.canonical import canonical_bytes, canonical_hash, normalise
from agents.drift.config import DriftConfig
from agents.drift.diff import Change, DiffResult
from agents.drift.engine import DriftEngine, DriftReport, Snapshot
from agents.drift.folder import baselines_from_folder
from agents.drift.git import GitSync, SubprocessGit, sync_git
from agents.drift.listing import open_findings, open_findings_sql
from agents.drift.pointer import Matcher, format_pointer, parse_pointer
from agents.drift.rules import IgnoreRule, IgnoreSet, ListRule, load_ignores, save_ignores
from agents.drift.severity import SeverityBands, classify
from agents.drift.terraform import load_terraform, terraform_baselines, terraform_resources

__all__ = [
    "BaselineStore",
    "Change",
    "DiffResult",
    "DriftConfig",
    "DriftDetector",
    "DriftEngine",
    "DriftReport",
    "GitSync",
    "IgnoreRule",
    "IgnoreSet",
    "ListRule",
    "Matcher",
    "SeverityBands",
    "Snapshot",
    "SubprocessGit",
    "accepted_baseline",
    "baselines_from_folder",
    "canonical_bytes",
    "canonical_hash",
    "classify",
    "desired_state",
    "format_pointer",
    "load_ignores",
    "load_terraform",
    "normalise",
    "open_findings",
    "open_findings_sql",
    "parse_pointer",
    "save_ignores",
    "sync_git",
    "terraform_baselines",
    "terraform_resources",
]
