"""What every bus implements: ``memory.Bus`` in one process, an AMQP bus across hosts.

Three operations, all on the asyncio loop of their caller:

- ``publish(topic, record)``: fire and forget, fanned out to *every* subscription
  on the topic (each agent sees each nudge). Delivery is best effort: the bus is
  level-triggered, so a lost nudge costs latency (the receiver's periodic resync
  repairs it), never correctness. Nothing is queued for a subscriber that does
  not exist yet.
- ``subscribe(topics)``: a ``Subscription`` receiving what is published on any of
  ``topics`` from now on, until closed.
- ``cast(topic, request, ttl)``: a request to *one* server of the topic without waiting
  for it to be handled (the answer is dropped); a request no server took within ``ttl``
  is dropped.
- ``serve(topic, handler)`` / ``call(topic, request, timeout)``: request/response.
  Each request goes to *one* server of the topic (servers of one topic compete,
  so several controllers share the load). A request waits for a server up to its
  timeout (``CallTimeout``); a handler's exception comes back as ``RemoteError``.

Records cross the bus in their wire form (``codec.dumps``/``codec.loads``) even in
memory, so what works in one process also works between hosts.

The AMQP bus (``amqp.py``; ``factory.open_bus(url)`` picks one) maps this onto RabbitMQ: one topic
exchange ``stackbox``; ``publish`` sends with the topic as routing key;
``subscribe`` declares an exclusive auto-delete queue bound to each topic;
``serve`` consumes a durable queue named after the topic (shared by every server,
so one of them answers); ``call`` publishes with ``reply_to`` (the caller's own
exclusive reply queue) and a ``correlation_id``, then waits for the answer with
that id, and answers ``messages.Failure`` become ``RemoteError``. Bodies are
``codec.dumps`` bytes, content type ``application/json``. It must reconnect on
its own and re-declare its queues; messages published while disconnected may be
dropped (level-triggered), calls fail with ``CallTimeout``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Protocol

from stackbox.bus import codec

Handler = Callable[[codec.Record], Awaitable[codec.Record]]


class BusError(Exception):
    """Base of the bus's own errors."""


class CallTimeout(BusError):
    """No answer in time (no server, or a server too slow)."""


class RemoteError(BusError):
    """The serving side failed; ``error_type`` names its exception."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


class Closed(BusError):
    """The subscription or the bus was closed."""


class Subscription(Protocol):
    def __aiter__(self) -> AsyncIterator[codec.Record]: ...

    async def get(self) -> codec.Record: ...

    def close(self) -> None: ...


class Service(Protocol):
    def close(self) -> None: ...


class Bus(Protocol):
    async def publish(self, topic: str, record: codec.Record) -> None: ...

    def subscribe(self, topics: Iterable[str]) -> Subscription: ...

    def serve(self, topic: str, handler: Handler) -> Service: ...

    async def call(self, topic: str, request: codec.Record, timeout: float = 30.0) -> codec.Record:
        """The answer to ``request``; raises ``CallTimeout`` or ``RemoteError``."""
        ...

    async def cast(self, topic: str, request: codec.Record, ttl: float = 30.0) -> None:
        """Hand ``request`` to one server of ``topic`` and return at once."""
        ...

    async def close(self) -> None: ...
