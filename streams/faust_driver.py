"""Faust's aiokafka driver with the fetch wait from Settings (faust-streaming fixes 1500 ms)."""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as driver

__all__ = ["FETCH_MAX_WAIT_MS", "App"]

FETCH_MAX_WAIT_MS = 1500
"""faust-streaming 0.15's own value, kept when an app is built without a setting."""


class _ConsumerThread(driver.AIOKafkaConsumerThread):  # type: ignore[misc]
    """Builds the worker consumer as Faust does, then applies the app's fetch wait.

    Why it matters: aiokafka leaves a partition whose records are still buffered out of the next
    fetch request; records that reach it while that request waits at the broker (up to the fetch
    wait, since other partitions have nothing) are fetched only when the request returns. With
    1500 ms that is a stall of up to 1.5 s per hop at low rates."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = getattr(self.app, "fetch_max_wait_ms", FETCH_MAX_WAIT_MS)
        return consumer  # read by AIOKafkaConsumer.start() when it builds its Fetcher


class _Consumer(driver.Consumer):  # type: ignore[misc]
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(driver.Transport):  # type: ignore[misc]
    Consumer = _Consumer


class App(faust.App):  # type: ignore[misc]
    """A Faust app whose agents' consumer uses `fetch_max_wait_ms` (`kafka://` brokers only)."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS,
                 **kwargs: Any) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)
