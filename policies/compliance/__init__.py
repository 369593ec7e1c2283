"""Compliance: a control library in YAML + Rego, evaluated per resource with one regopy bundle."""

from __future__ import annotations

from policies.compliance.evaluator import ControlEvaluator, FakeEvaluator, RegoEvaluator
from policies.compliance.library import ControlLibrary, load_library, standard_or_all
from policies.compliance.lifecycle import Transition, ViolationTracker
from policies.compliance.model import STANDARD_TITLES, STANDARDS, Control, normalise_standard
from policies.compliance.resources import Resource, load_resources, resources_from_document
from policies.compliance.scanner import Check, Scanner, ScanReport, StandardScore, Violation

__all__ = [
    "STANDARDS",
    "STANDARD_TITLES",
    "Check",
    "Control",
    "ControlEvaluator",
    "ControlLibrary",
    "FakeEvaluator",
    "RegoEvaluator",
    "Resource",
    "ScanReport",
    "Scanner",
    "StandardScore",
    "Transition",
    "Violation",
    "ViolationTracker",
    "load_library",
    "load_resources",
    "normalise_standard",
    "resources_from_document",
    "standard_or_all",
]
