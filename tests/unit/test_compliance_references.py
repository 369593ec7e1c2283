"""Framework references: every one names an existing requirement of the version it names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from policies.compliance import STANDARDS, Control, load_library
from policies.compliance.catalogue import load_catalogues
from policies.compliance.model import split_cis_ref

LIBRARY = load_library()
CATALOGUES = load_catalogues()
DOCS = Path(__file__).resolve().parents[2] / "docs" / "compliance.md"

# Words every title of a provider uses: a match on them says nothing about intent.
_GENERIC = {"aws", "s3", "azure", "gcp", "google", "cloud", "kubernetes", "eks", "gke", "bucket",
            "buckets", "instance", "instances", "service", "services", "resource", "resources",
            "account", "accounts", "cluster", "clusters", "novacron", "ensure", "enabled", "enable",
            "set", "all", "the", "is", "are", "not", "for", "to", "of", "and", "in", "on", "with",
            "that", "a", "an", "be", "or", "no", "by", "only", "use", "used", "minimize",
            "log", "logs", "logging", "cloudtrail"}
# Words of a control that name the same thing as a benchmark's wording.
_SYNONYMS = {"ssh": "remote administration 22", "rdp": "remote administration 3389",
             "tls": "encrypt transit", "https": "encrypt transit http", "kms": "key cmk",
             "imdsv2": "metadata", "internet": "public", "publicly": "public",
             "backups": "backup", "rotate": "rotation",
             "rotates": "rotation", "firewall": "ingress", "secure": "encrypt"}


def _words(text: str) -> set[str]:
    out: set[str] = set()
    for word in re.findall(r"[a-z0-9][a-z0-9:/.]*[a-z0-9]|[a-z0-9]", text.lower()):
        if word in _GENERIC:
            continue
        for w in [word, *_SYNONYMS.get(word, "").split()]:
            out.add(w[:6])  # a 6-letter prefix stands in for a stemmer (encrypted/encryption)
    return out


def _intent_matches(control: Control, title: str) -> bool:
    text = " ".join([control.title, control.description, control.remediation])
    return bool(_words(text) & _words(title))


def _refs(standard: str) -> list[tuple[str, str]]:
    return [(c.id, ref) for c in LIBRARY.controls.values()
            for ref in c.frameworks.get(standard, [])]


@pytest.mark.parametrize(("control_id", "ref"), _refs("cis"))
def test_cis_reference_names_a_recommendation_of_its_version(control_id: str, ref: str) -> None:
    benchmark, rid = split_cis_ref(ref)
    assert benchmark in CATALOGUES.benchmarks, f"no catalogue for {benchmark}"
    titles = CATALOGUES.benchmarks[benchmark].requirements
    assert rid in titles, f"{control_id}: {ref} is not a recommendation of {benchmark}"
    assert _intent_matches(LIBRARY.get(control_id), titles[rid]), (
        f"{control_id}: {ref} is '{titles[rid]}', which does not match the control's intent")


@pytest.mark.parametrize("standard", [s for s in STANDARDS if s != "cis"])
def test_framework_references_resolve(standard: str) -> None:
    unresolved = [(cid, ref) for cid, ref in _refs(standard)
                  if CATALOGUES.resolve(standard, ref) is None]
    assert unresolved == []


@pytest.mark.parametrize(
    ("control_id", "wrong"),
    [
        ("aws-s3-encryption", "aws-3.0.0/2.1.1"),  # v1.5.0's 2.1.1 is "deny HTTP" in v3.0.0
        ("aws-cloudtrail-kms", "aws-3.0.0/3.7"),  # v1.5.0 3.7 = v3.0.0 3.5; 3.7 is flow logs
        ("aws-kms-rotation", "aws-3.0.0/3.8"),
        ("aws-vpc-flow-logs", "aws-3.0.0/3.9"),
        ("aws-config-recorder-all", "aws-3.0.0/3.5"),
        ("aws-s3-mfa-delete", "aws-3.0.0/2.1.3"),
        ("aws-cloudtrail-cloudwatch", "aws-3.0.0/3.4"),
    ],
)
def test_the_check_rejects_references_of_the_other_version(control_id: str, wrong: str) -> None:
    benchmark, rid = split_cis_ref(wrong)
    title = CATALOGUES.benchmarks[benchmark].requirements[rid]
    assert not _intent_matches(LIBRARY.get(control_id), title), title


@pytest.mark.parametrize("missing", ["aws-1.5.0/5.6", "aws-3.0.0/2.1.5", "aws-3.0.0/3.10"])
def test_recommendations_of_one_version_only_are_absent_from_the_other(missing: str) -> None:
    benchmark, rid = split_cis_ref(missing)
    assert rid not in CATALOGUES.benchmarks[benchmark].requirements


def test_specific_fixes_of_earlier_references() -> None:
    assert LIBRARY.get("aws-instance-imdsv2").frameworks["cis"] == ["aws-3.0.0/5.6"]
    assert LIBRARY.get("azure-nsg-no-public-udp").frameworks["cis"] == ["azure-2.0.0/6.3"]
    assert LIBRARY.get("gcp-gke-legacy-abac-disabled").frameworks["cis"] == ["gke-1.4.0/5.8.4"]
    assert "aws-3.0.0/2.1.4" in LIBRARY.get("aws-s3-public-access-block").frameworks["cis"]


def test_cis_references_must_name_their_version() -> None:
    base = {"id": "x-y-z", "title": "A title", "severity": "LOW", "resource_types": ["t"],
            "remediation": "Fix it."}
    with pytest.raises(ValueError, match="benchmark version"):
        Control.model_validate({**base, "frameworks": {"cis": ["aws/2.1.1"]}})
    with pytest.raises(ValueError, match="not a pci-dss requirement"):
        Control.model_validate({**base, "frameworks": {"pci-dss": ["PCI 3.5.1"]}})


def test_docs_name_every_benchmark_version() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for key, catalogue in CATALOGUES.benchmarks.items():
        assert f"`{key}/`" in text, key
        assert catalogue.version in text, key


def test_catalogues_are_well_formed() -> None:
    for catalogue in [*CATALOGUES.benchmarks.values(), *CATALOGUES.frameworks.values()]:
        assert catalogue.requirements, catalogue.key
        assert all(title.strip() for title in catalogue.requirements.values()), catalogue.key
    aws = CATALOGUES.benchmarks["aws-3.0.0"].requirements
    assert aws["2.1.1"] == "Ensure S3 Bucket Policy is set to deny HTTP requests"
    assert len(CATALOGUES.frameworks["iso27001"].requirements) == 93
