"""`novacron worker --role NAME`: build the role's Faust app, load its wiring, run it."""

from __future__ import annotations

import importlib
import logging
import os
import threading
from typing import Any

from streams.roles import ROLES, install_import_guard
from streams.settings import Settings
from streams.stopping import start_stop_deadline

__all__ = ["build_worker", "lower_priority", "run_worker"]


def build_worker(role: str, settings: Settings | None = None, web_port: int | None = None):  # type: ignore[no-untyped-def]
    """The role's Faust app with its wiring registered (importing only what the role allows)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    install_import_guard(role)
    from streams.app import WorkerContext, create_app

    settings = settings or Settings()
    app = create_app(settings, role, web_port)
    ctx = WorkerContext(settings=settings, role=role, codec=settings.codec())
    for module in ROLES[role].wiring:
        importlib.import_module(module).register(app, ctx)

    @app.page("/status")
    async def status(view, request):  # type: ignore[no-untyped-def]
        """What each agent of the role reports (e.g. ClickHouse availability, gate readiness)."""
        return view.json({"role": role, "agents": {k: str(v) for k, v in ctx.health.items()}})

    return app


def lower_priority(role: str, settings: Settings) -> None:
    """Take the role's `nice` setting (streams/settings.py). Called before any thread starts:
    Linux keeps a nice value per thread, and new threads and child processes inherit it."""
    if niceness := settings.nice.get(role, 0):
        os.nice(niceness)


def run_worker(
    role: str, settings: Settings | None = None, loglevel: str = "info", web_port: int | None = None
) -> None:
    """Run one role until SIGTERM/SIGINT (Faust worker, on uvloop unless the role says not),
    then stop within the bound."""
    import faust
    import uvloop

    settings = settings or Settings()
    stop_timeout = settings.host.stop_timeout_seconds
    lower_priority(role, settings)

    class BoundedWorker(faust.Worker):  # type: ignore[misc]
        """Faust's worker, but stopping (from the first signal on) has a deadline."""

        deadline: threading.Timer | None = None

        async def on_stop(self) -> None:
            if self.deadline is None:
                self.deadline = start_stop_deadline(stop_timeout)
            await super().on_stop()

    if ROLES[role].uvloop:
        uvloop.install()
    app = build_worker(role, settings, web_port)
    os.makedirs(settings.data_dir / "faust" / role, exist_ok=True)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    worker: Any = BoundedWorker(app, loglevel=loglevel)
    worker.execute_from_commandline()
