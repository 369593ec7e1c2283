"""The policy gate's per-resource state in the govern role's compacted state topic.

The gate keeps pending approvals (with their expiry), incident flags and migration counters per
resource (`agents.gate_state`). `GateCheckpoints` saves a resource after every input or approval
that changed it, before the input's offset can be committed, under the agent name `gate` in
`govern-state`, on the partition its decisions and insights arrive on (co-partitioned, keyed by
resource). A partition's resources are restored when the partition is assigned — and, whatever
the order of Faust's rebalance signals, before the first record of that partition is handled —
saved when it is revoked, and everything is saved on a graceful stop. The store, the checkpoint
book and the metrics are the generic host's (`streams/state.py`, `streams/host_metrics.py`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from agents.gate import PolicyGate
from schemas import Event
from schemas.errors import DecodeError
from streams.host_metrics import HostMetrics, host_metrics
from streams.state import CheckpointBook, Position, StateRecord, StateStore

__all__ = ["GATE_AGENT", "GateCheckpoints", "positioned", "track_partitions"]

if TYPE_CHECKING:
    import faust

    from streams.app import WorkerContext

log = logging.getLogger(__name__)
E = TypeVar("E", bound=Event)
Receiver = Callable[..., Awaitable[None]]
GATE_AGENT = "gate"
"""The agent name of the gate's records in `govern-state` (`gate/<resource id>`)."""


class GateCheckpoints:
    """Which resources of the gate changed since their last save, and where they live."""

    def __init__(self, gate: PolicyGate, store: StateStore, book: CheckpointBook,
                 metrics: HostMetrics | None = None) -> None:
        self.gate, self.store, self.book = gate, store, book
        self.metrics = metrics or host_metrics()
        self.loaded: set[int] = set()
        self.lock = asyncio.Lock()
        """Held around every change to the gate and the save that follows it."""

    # --- what changed ----------------------------------------------------------------------
    def replayed(self, key: str, position: Position) -> bool:
        """True when the restored state already holds this input (redelivered after a crash)."""
        return self.book.replayed(key, position)

    def touched(self, key: str, position: Position) -> None:
        self.book.touched(key, position)

    def changed(self, key: str | None) -> None:
        """A resource changed without an input (an approval, an expiry)."""
        if key is not None:
            self.book.changed(key)

    # --- saving --------------------------------------------------------------------------------
    async def save_due(self, reason: str = "count", *, force: bool = False) -> None:
        await self._save(self.book.due(time.monotonic(), force=force), reason)

    async def _save(self, keys: Iterable[str], reason: str) -> None:
        # an empty state is kept (not a tombstone): its positions tell a redelivered input apart
        records = [StateRecord(GATE_AGENT, k, self.gate.snapshot_key(k) or b"{}",
                               self.book.meta(k)) for k in keys]
        if not records:
            return
        await self.store.save(records)
        now = time.monotonic()
        for r in records:
            self.book.saved(r.key, now)
            self.metrics.checkpoints.labels(GATE_AGENT, reason).inc()
        self.metrics.keys.labels(GATE_AGENT).set(len(self.book))

    # --- partitions ----------------------------------------------------------------------------
    async def ensure(self, partitions: Iterable[int]) -> list[str]:
        """Restore the partitions not loaded yet; return the resources restored."""
        restored: list[str] = []
        for p in sorted(set(partitions) - self.loaded):
            restored += await self._load(p)
        return restored

    def keep_only(self, partitions: Iterable[int]) -> None:
        """Forget the resources of loaded partitions that are no longer assigned here."""
        gone = self.loaded - set(partitions)
        for key in self.book.drop_partitions(gone):
            self.gate.forget_key(key)
        self.loaded -= gone

    async def revoked(self, partitions: Iterable[int]) -> None:
        """Partitions may move: their unsaved resources are saved for the next owner."""
        moving = set(partitions)
        await self._save(self.book.unsaved(moving), "revoke")
        self.book.settle(moving)

    async def shutdown(self) -> None:
        await self.save_due("shutdown", force=True)
        await self.store.close()

    async def _load(self, partition: int) -> list[str]:
        restored: list[str] = []
        for r in await self.store.load(partition):
            if r.agent != GATE_AGENT or r.blob is None:
                continue  # drift's, compliance's: the generic host restores those
            try:
                self.gate.restore_key(r.key, r.blob)
            except DecodeError as exc:  # start that resource cold rather than stop the gate
                log.warning("gate: state of %s not restored, starting cold: %s", r.key, exc)
                self.metrics.restores.labels(GATE_AGENT, "failed").inc()
                continue
            self.book.restored(r.key, r.meta)
            self.metrics.restores.labels(GATE_AGENT, "ok").inc()
            restored.append(r.key)
        self.loaded.add(partition)
        log.info("gate: partition %d restored, %d resource(s)", partition, len(restored))
        return restored


def positioned(ctx: WorkerContext, events: Sequence[faust.EventT], kind: type[E]
               ) -> list[tuple[E, Position]]:
    """Decode each record once with the edge rules (refused ones are the ingest role's to
    dead-letter), keeping where it came from."""
    out: list[tuple[E, Position]] = []
    for ev in events:
        at = (ev.message.topic, ev.message.partition, ev.message.offset)
        out += [(e, at) for e in ctx.decode_all([ev.value], kind)]
    return out


def track_partitions(app: faust.App, topics: set[str],
                     revoked: Callable[[set[int]], Awaitable[None]],
                     assigned: Callable[[set[int]], Awaitable[None]]) -> tuple[Receiver, ...]:
    """Call `revoked` / `assigned` with the partition numbers of `topics` on Faust's rebalance
    signals; return the receivers (keep them: a signal may hold them weakly)."""

    def ours(tps: Iterable[Any]) -> set[int]:
        return {tp.partition for tp in tps if tp.topic in topics}

    async def on_revoked(sender: Any, *args: Any, signal: Any = None, **_: Any) -> None:
        await revoked(ours(args[0]))

    async def on_assigned(sender: Any, *args: Any, signal: Any = None, **_: Any) -> None:
        await assigned(ours(args[0]))

    app.on_partitions_revoked.connect(cast(Any, on_revoked))
    app.on_partitions_assigned.connect(cast(Any, on_assigned))
    return on_revoked, on_assigned
