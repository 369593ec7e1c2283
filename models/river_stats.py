"""River's Rust statistics without their Python wrappers, for the per-sample paths of the models.

river 0.26 keeps each statistic in a Rust object (`_rolling_quantile`, `_ewmean`, `_ewvar`) and
wraps it in a Python class whose methods only forward to it (RollingQuantile also records its
first update, so that `get` returns None before it). Calling the Rust object gives the same
numbers without a Python call per update and per read; the learn equivalence tests pin them.
"""

from __future__ import annotations

from river import stats

__all__ = ["update_quantile"]


def update_quantile(quantile: stats.RollingQuantile, x: float) -> None:
    """`quantile.update(x)`: through the wrapper for the first update (it records it), then
    straight to the Rust statistic."""
    if quantile._is_updated:
        quantile._rolling_quantile.update(x)
    else:
        quantile.update(x)

