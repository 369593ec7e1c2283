"""The execution journal with fixed examples: records kept in order, unknown states refused,
and a file journal replayed after a restart (torn lines skipped wherever they are)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from runbooks.journal import WORKFLOW, FileJournal, InMemoryJournal, JournalEntry


def test_records_are_kept_in_order_and_folded_per_action() -> None:
    journal = InMemoryJournal()

    async def write() -> None:
        await journal.record("a1", WORKFLOW, "started")
        await journal.record("a1", "s1", "started")
        await journal.record("a1", "s1", "finished")
        await journal.record("a2", "s1", "failed")

    asyncio.run(write())
    assert journal.records == [("a1", WORKFLOW, "started"), ("a1", "s1", "started"),
                               ("a1", "s1", "finished"), ("a2", "s1", "failed")]
    entry = asyncio.run(journal.get("a1"))
    assert entry == JournalEntry("a1", "started", {"s1": "finished"}, ["s1"])
    assert entry.action_id == "a1" and not entry.done
    assert asyncio.run(journal.get("a3")) is None


@pytest.mark.parametrize("make", [lambda p: InMemoryJournal(), lambda p: FileJournal(p / "j")])
def test_an_unknown_state_is_refused_and_not_recorded(make, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    journal = make(tmp_path)
    with pytest.raises(ValueError, match="unknown journal state 'done'"):
        asyncio.run(journal.record("a1", "s1", "done"))
    assert journal.records == [] and journal.entries == {}
    if isinstance(journal, FileJournal):
        journal.close()
        assert (tmp_path / "j").read_text() == ""


def test_a_file_journal_replays_after_a_restart_and_skips_torn_lines(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "journal.jsonl"
    journal = FileJournal(path)
    assert journal.fsync is True and path.exists()
    asyncio.run(journal.record("a1", "s1", "started"))
    journal.close()
    with path.open("a", encoding="utf-8") as f:  # a torn write, then a later good record
        f.write('{"a":"a1","s":"s1"\n{"a":"a1","s":"s1","st":"finished"}\n')
    again = FileJournal(path, fsync=False)
    assert again.records == [("a1", "s1", "started"), ("a1", "s1", "finished")]
    entry = asyncio.run(again.get("a1"))
    assert entry is not None and entry.action_id == "a1" and entry.finished_order == ["s1"]
    asyncio.run(again.record("a2", WORKFLOW, "finished"))
    again.close()
    third = FileJournal(path)
    assert third.records[-1] == ("a2", WORKFLOW, "finished")
    assert asyncio.run(third.get("a2")).done  # type: ignore[union-attr]
    third.close()
