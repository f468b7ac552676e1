"""Our corrections to faust-streaming 0.15's Kafka consumer, applied by the app factory.

Each correction names the fault it removes; the logic lives in plain functions tested without
Faust (tests/unit/test_faust_consumer.py).

1. **Seek with the streams held** (the restart loop of a worker with lag and a big table).
   At the end of table recovery Faust resumes the stream partitions and only then awaits
   `perform_seek()` (faust/tables/recovery.py, `on_recovery_completed` and `_resume_streams`).
   The seek asks Kafka for every assigned partition's committed offset one by one, and
   meanwhile the fetcher hands the stream what aiokafka prefetched during recovery, moving
   Faust's read offset ahead. The seek then winds the read offset back to the committed
   offset while aiokafka's position stays ahead (seeking to where it already was is a no-op),
   so the next record looks like a jump: Faust records a "gap" it treats as acknowledged
   (faust-streaming #606, #216) and the batch after it misses those offsets. We take the
   stream partitions out of the fetch set for the duration of the seek, so nothing reaches a
   stream while its position is being decided.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP


class FetchSet(Protocol):
    """The part of a Faust consumer that decides which partitions the fetcher delivers."""

    def _get_active_partitions(self) -> set[TP]: ...

    def _is_changelog_tp(self, tp: TP) -> bool: ...

    def pause_partitions(self, tps: Iterable[TP]) -> None: ...

    def resume_partitions(self, tps: Iterable[TP]) -> None: ...


async def seek_with_streams_held(consumer: FetchSet, seek: Callable[[], Awaitable[None]]) -> None:
    """Run `seek` while the active stream partitions deliver nothing; restore them after."""
    held = {tp for tp in consumer._get_active_partitions() if not consumer._is_changelog_tp(tp)}
    consumer.pause_partitions(held)
    try:
        await seek()
    finally:
        consumer.resume_partitions(held)


class Consumer(faust_aiokafka.Consumer):
    """faust-streaming's aiokafka consumer with the corrections above."""

    async def perform_seek(self) -> None:
        await seek_with_streams_held(self, super().perform_seek)


class Transport(faust_aiokafka.Transport):
    """The aiokafka transport, building our consumer."""

    Consumer = Consumer


def install(app: Any) -> None:
    """Make `app` use the corrected consumer; call before anything touches `app.consumer`."""
    app.transport = Transport(app.conf.broker_consumer, app)
