"""PromQL-free mapping rules: which series feed which MetricSample field, and how.

A rule reads, per resource, the latest input of every series it selects (a gauge's value or a
counter's per-second rate) within a look-back window, aggregates them and writes one field:

- `gauge`:    offset + scale × agg(values)                 (memory bytes, cost, VM count)
- `rate`:     offset + scale × agg(counter rates)          (network bytes/s; CPU from idle seconds)
- `ratio`:    scale × num/den, or scale × (1 − num/den)     (memory used %, error ratio)
- `quantile`: scale × histogram quantile of bucket rates    (latency p95 from `_bucket` counters)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

__all__ = [
    "FIELD_BOUNDS",
    "Aggregate",
    "GaugeRule",
    "QuantileRule",
    "RateRule",
    "RatioRule",
    "Rule",
    "Selector",
    "aggregate",
    "histogram_quantile",
]

Aggregate = Literal["sum", "avg", "max", "min"]

FIELD_BOUNDS: dict[str, tuple[float, float]] = {
    "cpu_usage": (0.0, 100.0),
    "memory_usage": (0.0, 100.0),
    "network_latency_ms": (0.0, math.inf),
    "request_rate": (0.0, math.inf),
    "error_rate": (0.0, 1.0),
    "active_vms": (0.0, 1e9),
    "cost_per_hour": (0.0, math.inf),
}
"""MetricSample fields a rule may write, with their valid range (computed values are clamped:
a rate over a jittery scrape interval may read 100.4 % busy)."""

_EXTRA = re.compile(r"^extra\.[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")


class Selector(BaseModel):
    """Which series a rule reads: metric names plus label regexes (full match, RE2-like)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metrics: list[str] = Field(min_length=1)
    """Metric names (`__name__`), exact."""
    match: dict[str, str] = Field(default_factory=dict)
    """Label → regex the label value must fully match (a missing label reads as "")."""
    exclude: dict[str, str] = Field(default_factory=dict)
    """Label → regex; a series whose label value fully matches is left out."""
    _match: tuple[tuple[str, re.Pattern[str]], ...] = PrivateAttr(default=())
    _exclude: tuple[tuple[str, re.Pattern[str]], ...] = PrivateAttr(default=())

    def model_post_init(self, __context: object) -> None:
        self._match = tuple((k, re.compile(v)) for k, v in self.match.items())
        self._exclude = tuple((k, re.compile(v)) for k, v in self.exclude.items())

    @field_validator("match", "exclude")
    @classmethod
    def _valid_regexes(cls, value: dict[str, str]) -> dict[str, str]:
        for label, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"label {label!r}: invalid regex {pattern!r}: {exc}") from None
        return value

    def selects(self, labels: dict[str, str]) -> bool:
        """Whether a series (its labels, `__name__` included) is one of this selector's."""
        if labels.get("__name__") not in self.metrics:
            return False
        if any(not p.fullmatch(labels.get(k, "")) for k, p in self._match):
            return False
        return not any(p.fullmatch(labels.get(k, "")) for k, p in self._exclude)


class _RuleBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str
    """MetricSample field to fill (`cpu_usage`, …) or `extra.<name>` for the extra map."""
    scale: float = 1.0
    """Multiplier applied to the aggregated value."""
    offset: float = 0.0
    """Added after scaling (`cpu_usage` = 100 − 100 × idle rate: offset 100, scale −100)."""

    @field_validator("field")
    @classmethod
    def _known_field(cls, value: str) -> str:
        if value not in FIELD_BOUNDS and not _EXTRA.match(value):
            raise ValueError(
                f"unknown field {value!r}: use one of {sorted(FIELD_BOUNDS)} or extra.<name>"
            )
        return value

    def selectors(self) -> tuple[Selector, ...]:
        """Every selector of the rule (a series matching any of them feeds the rule)."""
        raise NotImplementedError

    def finish(self, raw: float | None) -> float | None:
        """Scale, offset and clamp a raw aggregate into the field's range (None stays None)."""
        if raw is None or not math.isfinite(raw):
            return None
        low, high = FIELD_BOUNDS.get(self.field, (-math.inf, math.inf))
        value = min(high, max(low, self.offset + self.scale * raw))
        if not math.isfinite(value):  # a huge input times the scale overflowed
            return None
        return float(round(value)) if self.field == "active_vms" else value


class GaugeRule(_RuleBase):
    """offset + scale × aggregate of the selected gauges' latest values."""

    kind: Literal["gauge"] = "gauge"
    """Rule kind."""
    series: Selector
    """The gauges read."""
    aggregate: Aggregate = "sum"
    """How the series of one resource are combined."""

    def selectors(self) -> tuple[Selector, ...]:
        return (self.series,)


class RateRule(_RuleBase):
    """offset + scale × aggregate of the selected counters' per-second rates (resets handled)."""

    kind: Literal["rate"] = "rate"
    """Rule kind."""
    series: Selector
    """The counters read."""
    aggregate: Aggregate = "sum"
    """How the series of one resource are combined."""

    def selectors(self) -> tuple[Selector, ...]:
        return (self.series,)


class RatioRule(_RuleBase):
    """scale × numerator / denominator (or its complement), each aggregated with `sum`."""

    kind: Literal["ratio"] = "ratio"
    """Rule kind."""
    numerator: Selector
    """Series summed into the numerator."""
    denominator: Selector
    """Series summed into the denominator (zero or missing: no value)."""
    of: Literal["value", "rate"] = "value"
    """Ratio of gauge values, or of counter rates (errors/s ÷ requests/s)."""
    complement: bool = False
    """Use 1 − ratio (memory used from memory available ÷ total)."""
    numerator_default: float | None = None
    """Numerator when no selected series has an input; None: no value. 0 for error counters
    (no 5xx series at all means no errors)."""

    def selectors(self) -> tuple[Selector, ...]:
        return (self.numerator, self.denominator)


class QuantileRule(_RuleBase):
    """scale × quantile of a classic histogram from its `_bucket` counters' rates."""

    kind: Literal["quantile"] = "quantile"
    """Rule kind."""
    series: Selector
    """The histogram's `<name>_bucket` series (each with an `le` label)."""
    quantile: float = Field(default=0.95, gt=0, lt=1)
    """Which quantile (0.95 = p95)."""

    def selectors(self) -> tuple[Selector, ...]:
        return (self.series,)


Rule = Annotated[GaugeRule | RateRule | RatioRule | QuantileRule, Field(discriminator="kind")]


def aggregate(values: Sequence[float], how: Aggregate) -> float | None:
    """Combine the inputs of one resource; no inputs means no value (missing is not zero)."""
    if not values:
        return None
    if how == "sum":
        return math.fsum(values)
    if how == "avg":
        return math.fsum(values) / len(values)
    return max(values) if how == "max" else min(values)


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """Prometheus' `histogram_quantile` over (upper bound, cumulative rate) pairs.

    Linear interpolation inside the bucket holding the rank; a rank in the +Inf bucket returns
    the largest finite bound; no observations returns None.
    """
    ordered = sorted(buckets)
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]):
        return None
    total = ordered[-1][1]
    if total <= 0:
        return None
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in ordered:
        count = max(count, prev_count)  # cumulative counts never fall (jitter between buckets)
        if count >= rank:
            if math.isinf(bound):
                return prev_bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return prev_bound
