"""Wiring of the `govern` role (policy gate, drift, compliance)."""

from __future__ import annotations

import faust

from streams.app import WorkerContext


def register(app: faust.App, ctx: WorkerContext) -> None:
    """Register the govern role's agents."""
