"""The toy agent of docs/CONTRIBUTING.md: one class, wired by one row in the tests."""

from __future__ import annotations

from agents.contract import AgentBase, Examples, refuse
from schemas import Event, Insight, MetricSample
from schemas.errors import DecodeError


class Tally(AgentBase):
    """Counts samples per resource and says so."""

    name = "tally"
    inputs = (MetricSample,)

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def handle(self, event: Event) -> list[Event]:
        if not isinstance(event, MetricSample):
            refuse(self, event)
        n = self.counts[event.resource_id] = self.counts.get(event.resource_id, 0) + 1
        return [Insight.caused_by(event, source="novacron.tally", resource_id=event.resource_id,
                                  kind="forecast", metric="samples", value=float(n))]

    def state_key(self, event: Event) -> str | None:
        return event.resource_id if isinstance(event, MetricSample) else None

    def snapshot(self, key: str) -> bytes | None:
        return str(self.counts[key]).encode() if key in self.counts else None

    def restore(self, key: str, blob: bytes) -> None:
        if not blob.isdigit():
            raise DecodeError(f"tally state of {key} is not a count")
        self.counts[key] = int(blob)

    def forget(self, key: str) -> None:
        self.counts.pop(key, None)

    @classmethod
    def examples(cls) -> Examples:
        return Examples(inputs=[MetricSample(resource_id=f"vm-{i % 3}") for i in range(9)])
