"""The checkpoint book finds due keys without walking every key: the same keys as the full walk."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from streams.state import CheckpointBook, StateMeta


@dataclass
class _Key:
    home: int
    unsaved: int = 0
    saved_at: float = 0.0
    urgent: bool = False


class _Walk:
    """The book's rule as a walk over every key (what it did before the heap)."""

    def __init__(self, every: int, age: float, on_output: bool) -> None:
        self.every, self.age, self.on_output = every, age, on_output
        self.keys: dict[str, _Key] = {}

    def touched(self, key: str, partition: int, now: float) -> None:
        self.keys.setdefault(key, _Key(partition, saved_at=now)).unsaved += 1

    def due(self, now: float) -> tuple[set[str], set[str]]:
        urgent = {k for k, t in self.keys.items() if t.unsaved and t.urgent}
        ready = {k for k, t in self.keys.items() if t.unsaved and not t.urgent and (
            t.unsaved >= self.every or now - t.saved_at >= self.age)}
        return urgent, ready


@pytest.mark.parametrize("seed", range(12))
def test_due_keys_equal_the_walk_over_every_key(seed: int, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    every, age = rng.choice([1, 3, 10]), rng.choice([0.5, 2.0, 5.0])
    limit = rng.choice([None, 2, 5])
    clock = [1000.0]
    monkeypatch.setattr("streams.state.time.monotonic", lambda: clock[0])
    book, walk = CheckpointBook(every, age, on_output=True, max_per_batch=limit), \
        _Walk(every, age, on_output=True)
    names = [f"svc-{i}" for i in range(40)]
    for step in range(3000):
        clock[0] += rng.choice([0.0, 0.01, 0.1, 0.7])
        now, op, key = clock[0], rng.random(), rng.choice(names)
        partition = names.index(key) % 4
        if op < 0.55:
            book.touched(key, ("metrics", partition, step))
            walk.touched(key, partition, now)
        elif op < 0.62 and key in walk.keys:
            book.emitted(key)
            walk.keys[key].urgent = True
        elif op < 0.66 and key in walk.keys:
            book.changed(key)
            walk.keys[key].unsaved += 1
        elif op < 0.67:
            gone = set(book.drop_partitions({partition}))
            assert gone == {k for k, t in walk.keys.items() if t.home == partition}
            for k in gone:
                del walk.keys[k]
        elif op < 0.68:
            book.restored(key, StateMeta(partition, {f"metrics/{partition}": step}, 5))
            walk.keys[key] = _Key(partition, saved_at=now)
        else:
            urgent, ready = walk.due(now)
            got = book.due(now)
            assert set(got[:len(urgent)]) == urgent
            chosen = set(got[len(urgent):])
            if limit is None or len(ready) <= limit:
                assert chosen == ready
            else:  # the longest unsaved first
                assert len(chosen) == limit and chosen <= ready
                newest_chosen = max(walk.keys[k].saved_at for k in chosen)
                assert all(walk.keys[k].saved_at >= newest_chosen for k in ready - chosen)
            for k in got if rng.random() < 0.8 else []:  # the host saves what is due
                book.saved(k, now)
                walk.keys[k].unsaved, walk.keys[k].saved_at, walk.keys[k].urgent = 0, now, False


class _NoWalk(dict):  # type: ignore[type-arg]
    """A key table that fails a walk over it (items, values, iteration)."""

    def items(self):  # type: ignore[no-untyped-def]
        raise AssertionError("walked every key")

    values = __iter__ = items


def test_a_due_search_does_not_walk_the_quiet_keys(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    clock = [0.0]
    monkeypatch.setattr("streams.state.time.monotonic", lambda: clock[0])
    book = CheckpointBook(every_events=100, max_age_seconds=30.0)
    for i in range(5000):  # a worker holding many resources, all saved
        book.touched(f"svc-{i}", ("metrics", 0, i))
        book.saved(f"svc-{i}", 0.0)
    book.touched("svc-7", ("metrics", 0, 9000))
    book._keys = _NoWalk(book._keys)
    assert book.due(10.0) == []
    assert book.due(30.0) == ["svc-7"]
