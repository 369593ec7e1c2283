"""The `runbooks` registry topic folded into the executor's runbook Library.

The gate folds the same records into the govern role's SharedState.runbooks (streams/gate.py),
with the same content-hash check (runbooks/registry.RunbookStore), so the
runbook hash the gate approves is the one the executor verifies before it runs anything; until
the executor has folded a new version, an action resolved against it is refused (fail closed).
"""

from __future__ import annotations

import logging

from aiokafka import ConsumerRecord

from runbooks.loader import Library
from runbooks.registry import RunbookStore
from schemas.errors import NovacronError
from streams.reader import Handler

__all__ = ["runbook_fold"]

log = logging.getLogger(__name__)


def runbook_fold(topic: str, library: Library) -> Handler:
    """A reader handler that keeps `library` serving the topic's runbooks (tombstones withdraw
    them); read the topic with `streams.reader.TopicReader` from the start."""
    store = RunbookStore(on_change=library.register)

    async def fold(records: list[ConsumerRecord]) -> None:
        for r in records:
            try:
                store.apply(r.key, r.value)
            except NovacronError as exc:  # refused records never serve: say why and go on
                log.warning("runbook record %s@%d refused: %s", topic, r.offset, exc)

    return fold
