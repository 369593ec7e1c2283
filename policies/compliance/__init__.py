"""Compliance: a control library in YAML + Rego, evaluated per resource with one regopy bundle."""

from __future__ import annotations

from policies.compliance.attestations import AttestationStore
from policies.compliance.evaluator import ControlEvaluator, FakeEvaluator, RegoEvaluator, Verdicts
from policies.compliance.graph import Subject, build_subjects
from policies.compliance.library import ControlLibrary, load_library, standard_or_all
from policies.compliance.lifecycle import Transition, ViolationTracker
from policies.compliance.model import (
    SEVERITY_WEIGHTS,
    STANDARD_TITLES,
    STANDARDS,
    Control,
    normalise_standard,
)
from policies.compliance.resources import (
    UNKNOWN,
    Resource,
    ScanInput,
    load_resources,
    load_scan_input,
    resources_from_document,
    scan_input_from_document,
)
from policies.compliance.scanner import Check, Evidence, Scanner, ScanReport
from policies.compliance.scoring import StandardScore, Violation

__all__ = [
    "SEVERITY_WEIGHTS",
    "STANDARDS",
    "STANDARD_TITLES",
    "UNKNOWN",
    "AttestationStore",
    "Check",
    "Control",
    "ControlEvaluator",
    "ControlLibrary",
    "Evidence",
    "FakeEvaluator",
    "RegoEvaluator",
    "Resource",
    "ScanInput",
    "ScanReport",
    "Scanner",
    "StandardScore",
    "Subject",
    "Transition",
    "Verdicts",
    "Violation",
    "ViolationTracker",
    "build_subjects",
    "load_library",
    "load_resources",
    "load_scan_input",
    "normalise_standard",
    "resources_from_document",
    "scan_input_from_document",
    "standard_or_all",
]
