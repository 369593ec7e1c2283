"""Requirement catalogues: CIS benchmark recommendation lists and framework requirement lists.

`benchmarks/cis-<benchmark>-<version>.yaml` hold CIS recommendations (ids and titles, from the
published tables of contents); `frameworks/<standard>.yaml` hold the requirements of PCI DSS,
HIPAA, SOC 2, GDPR and ISO 27001. Control references resolve to them; the report lists their
requirements and which controls cover each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from policies.compliance.model import split_cis_ref
from schemas.errors import RejectedError

__all__ = ["BENCHMARKS_DIR", "FRAMEWORKS_DIR", "Catalogue", "Catalogues", "load_catalogues"]

BENCHMARKS_DIR = Path(__file__).parent / "benchmarks"
FRAMEWORKS_DIR = Path(__file__).parent / "frameworks"


@dataclass(frozen=True)
class Catalogue:
    """The requirements of one benchmark version or framework."""

    key: str
    """`aws-1.5.0` (a CIS benchmark and version) or a standard key (`pci-dss`)."""
    title: str
    version: str
    requirements: dict[str, str]
    granularity: str = "exact"
    """exact: references name a listed id; prefix: they may name a sub-requirement of one."""
    sections: tuple[str, ...] = field(default_factory=tuple)
    """Sections listed (a catalogue may list part of a benchmark; the file says which)."""

    def resolve(self, ref: str) -> str | None:
        """The listed requirement a reference names (or falls under), None when unlisted."""
        if ref in self.requirements:
            return ref
        if self.granularity != "prefix":
            return None
        parents = [r for r in self.requirements if ref.startswith(r) and ref[len(r)] in ".("]
        if parents:
            return max(parents, key=len)
        children = [r for r in self.requirements if r.startswith(ref) and r[len(ref)] in ".("]
        return min(children, key=len) if children else None


class Catalogues:
    """Every catalogue, by key, and reference resolution per standard."""

    def __init__(self, benchmarks: dict[str, Catalogue], frameworks: dict[str, Catalogue]):
        self.benchmarks = benchmarks
        self.frameworks = frameworks

    def for_standard(self, standard: str) -> list[Catalogue]:
        if standard == "cis":
            return [self.benchmarks[k] for k in sorted(self.benchmarks)]
        return [self.frameworks[standard]] if standard in self.frameworks else []

    def resolve(self, standard: str, ref: str) -> tuple[str, str] | None:
        """(catalogue key, requirement id) a control reference names, None when unlisted."""
        if standard == "cis":
            bench, rid = split_cis_ref(ref)
            benchmark = self.benchmarks.get(bench)
            return (bench, rid) if benchmark is not None and rid in benchmark.requirements else None
        catalogue = self.frameworks.get(standard)
        listed = catalogue.resolve(ref) if catalogue else None
        return (standard, listed) if listed is not None else None


def _read(path: Path, key_field: str) -> Catalogue:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        reqs = {str(k): str(v) for k, v in (doc.get("recommendations")
                                            or doc.get("requirements")).items()}
        return Catalogue(str(doc[key_field]), str(doc["title"]), str(doc["version"]), reqs,
                         str(doc.get("granularity", "exact")),
                         tuple(str(s) for s in doc.get("sections", ())))
    except (OSError, yaml.YAMLError, AttributeError, KeyError, TypeError) as exc:
        raise RejectedError(f"{path}: not a requirement catalogue: {exc}") from exc


@cache
def load_catalogues(benchmarks_dir: Path = BENCHMARKS_DIR,
                    frameworks_dir: Path = FRAMEWORKS_DIR) -> Catalogues:
    """Read every catalogue file (cached: they ship with the code)."""
    benchmarks = {c.key: c for c in (_read(p, "benchmark")
                                     for p in sorted(benchmarks_dir.glob("*.yaml")))}
    frameworks = {c.key: c for c in (_read(p, "framework")
                                     for p in sorted(frameworks_dir.glob("*.yaml")))}
    return Catalogues(benchmarks, frameworks)
