"""RetryForwarder: each message waits out its tier's delay, then goes back to the raw topic."""

from __future__ import annotations

import asyncio

from pipeline.outcomes import RawMessage
from pipeline.retry_topics import RetryForwarder


class FakeProducer:
    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.sent: list[tuple[str, bytes, bytes | None, float]] = []

    async def send(self, topic: str, value: bytes, key: bytes | None) -> asyncio.Future[None]:
        self.sent.append((topic, value, key, self.clock[0]))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def msg(value: bytes) -> RawMessage:
    return RawMessage(value=value, key=b"k", topic="retry.1", partition=0, offset=0)


def forwarder(clock: list[float]) -> tuple[RetryForwarder, FakeProducer]:
    async def sleep(seconds: float) -> None:
        clock[0] += seconds

    producer = FakeProducer(clock)
    fwd = RetryForwarder(producer, "raw", 2.0, clock=lambda: clock[0], sleep=sleep)  # type: ignore[arg-type]
    return fwd, producer


async def test_a_message_is_forwarded_once_its_delay_has_passed() -> None:
    clock = [100.0]
    fwd, producer = forwarder(clock)
    assert await fwd.forward([(msg(b"a"), 99.5)]) == 1
    assert producer.sent == [("raw", b"a", b"k", 101.5)]


async def test_a_message_already_due_is_not_delayed() -> None:
    clock = [100.0]
    fwd, producer = forwarder(clock)
    await fwd.forward([(msg(b"old"), 90.0)])
    assert producer.sent[0][3] == 100.0


async def test_messages_leave_in_order_each_at_its_own_time() -> None:
    clock = [100.0]
    fwd, producer = forwarder(clock)
    await fwd.forward([(msg(b"a"), 100.0), (msg(b"b"), 101.0), (msg(b"c"), 101.0)])
    assert [(v, t) for _, v, _, t in producer.sent] == [(b"a", 102.0), (b"b", 103.0), (b"c", 103.0)]
