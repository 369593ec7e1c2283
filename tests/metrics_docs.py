"""What docs/metrics.md documents: the metric names of each role and the alert table."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["alert_rows", "role_names", "seed_rows"]

DOC = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"
_ROW = re.compile(r"^\| `([^`]+)` \| ([^|]+) \|")


def _sections() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = ""
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            out[current] = []
        elif current:
            out[current].append(line)
    return out


def _rows(section: str) -> list[tuple[str, str]]:
    return [(m[1], m[2].strip()) for line in _sections()[section] if (m := _ROW.match(line))]


def role_names(role: str) -> set[str]:
    """Names a role's /metrics must show: the `Every role` table, the generic host's when the role
    runs on it, and the role's own."""
    from streams.wiring import roles  # roles with a wiring row run on the generic host

    host = _rows("The generic host") if role in roles() else []
    return {name for name, _ in _rows("Every role") + host + _rows(role)}


def seed_rows() -> dict[str, str]:
    """Seed name → role, from the table of the seed's names."""
    return dict(_rows("The seed's names"))


def alert_rows() -> dict[str, str]:
    """Alert name → severity, from the alert table."""
    return dict(_rows("Alerts"))
