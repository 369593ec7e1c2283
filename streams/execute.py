"""Wiring of the `execute` role (executor)."""

from __future__ import annotations

import faust

from streams.app import WorkerContext


def register(app: faust.App, ctx: WorkerContext) -> None:
    """Register the execute role's agents."""
