"""Producer: a send that fails with an unrecoverable sequence error gets the producer replaced."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, OutOfOrderSequenceNumber

from pipeline.producer import Producer
from pipeline.retry import Backoff


class FakeAioProducer:
    def __init__(
        self, name: int, fail_with: Exception | None, start_error: Exception | None
    ) -> None:
        self.name = name
        self.fail_with = fail_with
        self.start_error = start_error
        self.started = self.stopped = False
        self.sent: list[bytes] = []

    async def start(self) -> None:
        if self.start_error is not None:
            raise self.start_error
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, value: bytes, **kwargs: Any) -> asyncio.Future[None]:
        self.sent.append(value)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.fail_with is not None:
            done.set_exception(self.fail_with)
        else:
            done.set_result(None)
        return done


def make(
    *plans: tuple[Exception | None, Exception | None],
) -> tuple[Producer, list[FakeAioProducer]]:
    """Each plan is (send error, start error) for the next inner producer created."""
    made: list[FakeAioProducer] = []
    queue = list(plans)

    def factory() -> FakeAioProducer:
        fail, start = queue.pop(0) if queue else (None, None)
        made.append(FakeAioProducer(len(made), fail, start))
        return made[-1]

    return Producer(factory, backoff=Backoff(first_s=0.0, cap_s=0.0)), made  # type: ignore[arg-type]


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_an_out_of_order_sequence_replaces_the_producer() -> None:
    producer, made = make((OutOfOrderSequenceNumber(), None))
    await producer.start()
    sent = await producer.send("t", b"a")
    assert isinstance(sent.exception(), OutOfOrderSequenceNumber)
    await settle()
    assert producer.healthy
    assert producer.replacements == 1
    assert made[0].stopped
    assert made[1].started
    await producer.send_and_wait("t", b"b")
    assert made[1].sent == [b"b"]


async def test_ordinary_errors_keep_the_producer() -> None:
    producer, made = make((KafkaTimeoutError(), None))
    await producer.start()
    sent = await producer.send("t", b"a")
    assert isinstance(sent.exception(), KafkaTimeoutError)
    await settle()
    assert (producer.replacements, len(made)) == (0, 1)
    assert producer.healthy


async def test_a_replacement_that_cannot_start_is_retried() -> None:
    producer, made = make(
        (OutOfOrderSequenceNumber(), None), (None, KafkaConnectionError()), (None, None)
    )
    await producer.start()
    await producer.send("t", b"a")
    await settle()
    assert producer.replacements == 1
    assert [m.started for m in made] == [True, False, True]


async def test_not_healthy_while_the_replacement_starts() -> None:
    producer, made = make((OutOfOrderSequenceNumber(), None))
    gate = asyncio.Event()
    await producer.start()
    await producer.send("t", b"a")
    original_factory = producer._factory

    def slow_factory() -> Any:
        inner = original_factory()
        start = inner.start

        async def gated_start() -> None:
            await gate.wait()
            await start()

        inner.start = gated_start
        return inner

    producer._factory = slow_factory
    await settle()
    assert not producer.healthy
    gate.set()
    await settle()
    assert producer.healthy
    assert len(made) == 2


async def test_a_kafka_away_at_start_is_connected_to_in_the_background() -> None:
    producer, made = make((None, KafkaConnectionError()), (None, KafkaConnectionError()))
    await producer.start(wait=False)
    assert not producer.connected
    with pytest.raises(KafkaConnectionError):  # fails fast: the ingress answers 503
        await producer.send("t", b"early")
    await settle()
    assert producer.connected
    assert producer.healthy
    assert producer.replacements == 0  # connecting is not a replacement
    await (await producer.send("t", b"late"))
    assert [m.sent for m in made] == [[], [], [b"late"]]


async def test_waiting_for_kafka_at_start_raises_when_it_is_away() -> None:
    producer, _ = make((None, KafkaConnectionError()))
    with pytest.raises(KafkaConnectionError):
        await producer.start()
