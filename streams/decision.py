"""Kafka wiring of the decision agent (filled in by its issue)."""

from __future__ import annotations

import faust

from streams.app import WorkerContext


def register(app: faust.App, ctx: WorkerContext) -> None:
    """Register the decision agent's streams on the role's app."""
