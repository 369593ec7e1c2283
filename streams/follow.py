"""`TopicFollower`: the callback-bound face of `streams.reader.TopicReader` that the gate uses."""

from __future__ import annotations

from streams.reader import Handler, TopicReader
from streams.settings import KafkaConfig

__all__ = ["Handler", "TopicFollower"]


class TopicFollower:
    """Every partition of one topic without a consumer group, bound to one handler."""

    def __init__(self, kafka: KafkaConfig, topic: str, handle: Handler, *, from_start: bool
                 ) -> None:
        self.topic, self.handle = topic, handle
        self._reader = TopicReader(kafka, topic, from_start=from_start)

    async def start(self) -> None:
        await self._reader.start()

    async def catch_up(self) -> None:
        """Return once every record that existed when called has been handled."""
        await self._reader.catch_up(self.handle)

    async def run(self) -> None:
        """Follow the topic until cancelled."""
        await self._reader.follow(self.handle)

    async def stop(self) -> None:
        await self._reader.stop()
