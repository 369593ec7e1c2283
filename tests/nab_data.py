"""Where the NAB tests find data: the samples committed under tests/fixtures always, the full NAB
folder when it is present.

The full folder is `$NOVACRON_NAB_DATA`, else `../shared/data/nab` beside the checkout. When
NOVACRON_NAB_DATA is set, the folder must exist (CI sets it, so CI never skips the full-data
tests); when it is unset and the folder is absent, the full-data tests are skipped with a reason
saying how to run them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["EXCERPT", "FULL_NAB", "SYNTHETIC", "needs_full_nab", "skip_without_full_nab"]

ROOT = Path(__file__).resolve().parents[1]
ENV = "NOVACRON_NAB_DATA"
DEFAULT = ROOT.parent / "shared" / "data" / "nab"
EXCERPT = ROOT / "tests" / "fixtures" / "nab-excerpt"
"""Numenta's published reference output for two artificial files (MIT, see its README)."""
SYNTHETIC = ROOT / "tests" / "fixtures" / "nab-synthetic"
"""Generated CPU-like series with NAB-style labels (this project's own)."""


def _is_nab(path: Path) -> bool:
    return (path / "labels" / "combined_windows.json").is_file()


def _full_nab() -> Path | None:
    given = os.environ.get(ENV)
    if given:
        if not _is_nab(Path(given)):
            raise pytest.UsageError(f"{ENV}={given} is not a NAB folder "
                                    "(labels/combined_windows.json is missing)")
        return Path(given)
    return DEFAULT if _is_nab(DEFAULT) else None


FULL_NAB = _full_nab()
SKIP_REASON = (f"full NAB data not found: set {ENV} to a NAB folder or put it at {DEFAULT} "
               "(CI does); the committed samples under tests/fixtures/nab-* ran instead")
needs_full_nab = pytest.mark.skipif(FULL_NAB is None, reason=SKIP_REASON)
"""Mark a test that reads the full NAB folder (`FULL_NAB`)."""


def skip_without_full_nab() -> pytest.MarkDecorator:
    """The mark for a parameter that stands for the full folder when it is absent."""
    return pytest.mark.skip(reason=SKIP_REASON)
