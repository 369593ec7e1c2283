"""Wiring of the `learn` role (optimizer and decision engine)."""

from __future__ import annotations

import faust

from streams.app import WorkerContext


def register(app: faust.App, ctx: WorkerContext) -> None:
    """Register the learn role's agents."""
