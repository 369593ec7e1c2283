"""Fitness checks of remote-write series and samples, each failure named by a reason code."""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Sequence

__all__ = [
    "REJECT_REASONS",
    "SeriesProblem",
    "is_stale_marker",
    "resource_id_problem",
    "series_problem",
]

REJECT_REASONS: dict[str, str] = {
    "missing_name": "the series has no __name__ label",
    "invalid_metric_name": "__name__ is not a Prometheus metric name",
    "invalid_label_name": "a label name is not [a-zA-Z_][a-zA-Z0-9_]*",
    "duplicate_label": "a label name appears twice in the series",
    "missing_id_label": "none of the configured id labels is present",
    "invalid_id_label": "the id label holds control characters or is too long",
    "non_finite": "the value is NaN or ±Inf (not a staleness marker)",
    "timestamp_out_of_range": "the timestamp is absurd (too old, in the future, or ≤ 0)",
    "out_of_order": "the sample is older than one already accepted for the series",
    "native_histogram": "native histogram samples are not mapped",
}
"""Every reason a sample is rejected (dead-lettered and counted), for docs and metrics."""

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_STALE_BITS = 0x7FF0000000000002  # Prometheus value.StaleNaN
MAX_ID_LENGTH = 256
"""Longest resource id (MetricSample.resource_id)."""


def is_stale_marker(value: float) -> bool:
    """Prometheus' staleness marker (a series ended): normal traffic, not an unfit value."""
    return math.isnan(value) and struct.unpack("<Q", struct.pack("<d", value))[0] == _STALE_BITS


class SeriesProblem(ValueError):
    """A series none of whose samples can be used; `reason` is a key of REJECT_REASONS."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def series_problem(labels: Sequence[tuple[str, str]]) -> SeriesProblem | None:
    """What makes a series' label set unusable, or None.

    Labels with an empty value count as absent (the protocol says they are not sent)."""
    seen: set[str] = set()
    name: str | None = None
    for key, value in labels:
        if key in seen:
            return SeriesProblem("duplicate_label", f"label {key!r} appears twice")
        seen.add(key)
        if key == "__name__":
            name = value
        elif not _LABEL_NAME.match(key):
            return SeriesProblem("invalid_label_name", f"label name {key!r} is invalid")
    if not name:
        return SeriesProblem("missing_name", "the series has no __name__ label")
    if not _METRIC_NAME.match(name):
        return SeriesProblem("invalid_metric_name", f"metric name {name!r} is invalid")
    return None


def resource_id_problem(value: str) -> SeriesProblem | None:
    """Why a label value cannot be a resource id (control characters, length), or None."""
    if _CONTROL.search(value):
        return SeriesProblem("invalid_id_label", f"id {value!r} holds control characters")
    if len(value) > MAX_ID_LENGTH:
        return SeriesProblem("invalid_id_label", f"id is {len(value)} characters (max 256)")
    return None
