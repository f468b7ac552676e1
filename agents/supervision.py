"""Stream supervision: held batches, the offset guard and the stall watchdog, as alarms.

The corrections in `agents/faust_consumer.py` remove the faults we found in Faust; this module
watches that they stay removed. It reads the consumer through `ConsumerView` and Kafka's
committed offsets through a callable, so it is tested without Faust or a broker
(tests/unit/test_supervision.py).

Both checks raise an alarm (a structured log line with `alarm`, and a counter that `/readyz`
reports). Each then fails safe: nothing after a hole is ever acknowledged, and a worker whose
stream stopped is replaced, re-reading from the committed offsets.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import partial
from typing import Any, Protocol, TypeVar

from aiokafka.errors import KafkaError
from faust.types import TP

from agents.offsets import OffsetGuard, Partition
from agents.watchdog import StallWatchdog
from pipeline.errors import is_transient
from pipeline.outcomes import RawMessage
from pipeline.retry import Backoff, until_done

log = logging.getLogger("agents.supervision")

GUARD_ALARM = "offset guard"
STALL_ALARM = "stall watchdog"
COMMIT_ALARM = "commit watchdog"
AGENT_ALARM = "batch failed"
ALARMS = (GUARD_ALARM, STALL_ALARM, COMMIT_ALARM, AGENT_ALARM)
_KAFKA_AWAY = (KafkaError, OSError, TimeoutError)
_BACKOFF = Backoff(first_s=0.5, cap_s=10.0)
T = TypeVar("T")


class ConsumerView(Protocol):
    """What supervision reads of the Faust consumer."""

    def assignment(self) -> set[TP]: ...

    def highwater(self, tp: TP) -> int | None: ...

    async def earliest_offsets(self, *partitions: TP) -> Mapping[TP, int]: ...

    def commit_state(self, tp: TP) -> dict[str, object]:
        """What the consumer believes about `tp`'s commits (logged with an alarm)."""
        ...


GroupOffsets = Callable[[], Awaitable[dict[Partition, int]]]


class Alarms:
    """How often each alarm fired in this process; every firing is logged once."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def fire(self, name: str, reason: str, state: object = None) -> None:
        self.counts[name] += 1
        log.error(
            "stream alarm",
            extra={"alarm": name, "reason": reason, "count": self.counts[name], "state": state},
        )


def raw_message(event: Any) -> RawMessage:
    """The pipeline's view of a Faust event's message."""
    message = event.message
    return RawMessage(
        value=message.value,
        key=message.key,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        handle=event,
    )


class StreamSupervisor:
    """Watches the stream partitions of one worker; `replace(reason)` must not return."""

    def __init__(
        self,
        consumer: ConsumerView,
        group_offsets: GroupOffsets,
        *,
        stall_timeout_s: float,
        replace: Callable[[str], None],
        skip_topics: Iterable[str] = (),
        alarms: Alarms | None = None,
    ) -> None:
        self._consumer = consumer
        self._group_offsets = group_offsets
        self._replace = replace
        self._skip_topics = set(skip_topics)
        self._timeout = stall_timeout_s
        self.alarms = alarms or Alarms()
        self.guard = OffsetGuard(self.start_of)
        self.watchdog = StallWatchdog(stall_timeout_s)
        self._committed: dict[Partition, int] | None = None  # Kafka's view, per assignment
        self._starts: dict[Partition, int | None] = {}

    def on_assigned(self) -> None:
        """Partitions moved: every start and committed offset is learned again."""
        self.guard.forget_assignment()
        self.watchdog.reset()
        self._committed = None
        self._starts.clear()

    async def start_of(self, partition: Partition) -> int | None:
        """Where this assignment starts reading: the committed offset, or the log's start.

        Kafka is asked, not Faust: Faust's own map was seen empty right after a restart.
        """
        if partition not in self._starts:
            # Locals only: a rebalance may forget the assignment while we wait for Kafka.
            committed = self._committed
            if committed is None:
                committed = self._committed = await self._until_kafka_answers(self._group_offsets)
            # Every partition of this topic in one request: each request crosses to Faust's
            # consumer thread, and six in turn kept a restarted worker's first batch ~9 s.
            wanted = {TP(*partition)} | {
                tp for tp in self._consumer.assignment() if tp.topic == partition[0]
            }
            earliests = await self._until_kafka_answers(
                partial(self._consumer.earliest_offsets, *sorted(wanted))
            )
            starts: dict[Partition, int | None] = {}
            for tp in wanted:
                key = (tp.topic, tp.partition)
                known = [o for o in (committed.get(key), earliests.get(tp)) if o is not None]
                starts[key] = max(known) if known else None
            for key, start in starts.items():
                self._starts.setdefault(key, start)
        return self._starts[partition]

    async def _until_kafka_answers(self, ask: Callable[[], Awaitable[T]]) -> T:
        """Kafka's answer, however long it is away: a batch cannot be checked without it."""
        return await until_done(ask, retriable=is_transient, backoff=_BACKOFF, what="offsets")

    async def process(
        self, stream: Any, max_: int, within: float, body: Callable[[list[Any]], Awaitable[None]]
    ) -> None:
        """Run `body` on each batch, whose messages stay unacknowledged until it returned.

        take_events acks a batch in a `finally`, even when shutdown cancels us mid-write. Each
        message gets an extra reference, so that ack cannot reach the consumer; we let go only
        after the body returned, i.e. after the batch is durable. A batch with a hole before it
        is never released, and neither is one whose body failed: Faust would restart the agent
        past it (its messages are never delivered again) and its offsets could never be
        committed, so the worker is replaced to re-read it.
        """
        async for events in stream.take_events(max_, within=within):
            self.watchdog.batch_started()
            for event in events:
                event.message.incref()
            gap = await self.guard.check([raw_message(e) for e in events])
            if gap is not None:
                self._alarm(GUARD_ALARM, str(gap))  # does not return: nothing after it is acked
                return
            try:
                await body(events)
            except Exception as exc:  # noqa: BLE001 - any failure: the batch must be re-read
                self._alarm(AGENT_ALARM, f"a batch failed: {exc!r}")
                return
            for event in events:
                event.ack()
            self.watchdog.batch_done()

    async def check_progress(self, ready: bool) -> None:
        """The timer's check: idle with messages waiting, or commits not moving, for too long.
        A check that fails is logged and skipped: supervision must never end the worker."""
        try:
            alarm = await self._progress_alarm(ready)
        except Exception:
            log.exception("stream supervision check failed; trying again at the next tick")
            return
        if alarm is not None:
            self._alarm(*alarm)

    async def _progress_alarm(self, ready: bool) -> tuple[str, str, object] | None:
        """The alarm this tick raises, if any: (name, reason, state)."""
        self.watchdog.checking()
        if not ready:  # recovering or rebalancing: waiting is expected
            self.watchdog.reset()
            return None
        try:
            waiting = await self._messages_waiting()  # may wait for Kafka to learn a start
        except _KAFKA_AWAY:
            self.watchdog.reset()  # Kafka is away: a restart would not help, so wait for it
            return None
        self.watchdog.checking()  # a long wait just now was an outage, not a stall
        if self.watchdog.stalled(waiting):
            reason = f"no messages for {self._timeout:g} s with lag outstanding"
            return STALL_ALARM, reason, None
        try:
            positions = await self._commit_positions()
        except _KAFKA_AWAY:
            self.watchdog.reset()  # nothing can commit while Kafka is away: judge from its return
            return None
        self.watchdog.checking()
        if not self.watchdog.commits_stuck(positions):
            return None
        behind = [TP(*p) for p, (done, to) in positions.items() if done is None or done < to]
        state = {f"{tp.topic}[{tp.partition}]": self._consumer.commit_state(tp) for tp in behind}
        return COMMIT_ALARM, f"offsets not committed for {self._timeout:g} s", state

    def _alarm(self, name: str, reason: str, state: object = None) -> None:
        self.alarms.fire(name, reason, state)
        self._replace(reason)

    def _stream_partitions(self) -> list[TP]:
        return [tp for tp in self._consumer.assignment() if tp.topic not in self._skip_topics]

    async def _messages_waiting(self) -> bool:
        """Does any assigned stream partition hold messages past the next one we expect?"""
        for tp in self._stream_partitions():
            key = (tp.topic, tp.partition)
            expected = self.guard.next_expected(key)
            if expected is None:
                expected = await self.start_of(key)
            try:
                highwater = self._consumer.highwater(tp)  # as of the last fetch: no request
            except AssertionError:  # aiokafka asserts assignment; a rebalance raced us
                return False
            if highwater is not None and expected is not None and highwater > expected:
                return True
        return False

    async def _commit_positions(self) -> dict[Partition, tuple[int | None, int]]:
        """Per partition processed since assignment: (the group's offset in Kafka, next to
        process). Kafka's view, not Faust's, which may count a failed commit as done."""
        processed = {}
        for tp in self._stream_partitions():
            to = self.guard.next_expected((tp.topic, tp.partition))
            if to is not None:
                processed[(tp.topic, tp.partition)] = to
        if not processed:
            return {}
        committed = await self._group_offsets()
        return {key: (committed.get(key), to) for key, to in processed.items()}
