"""The in-process bus: the all-in-one cloud's controller and agents on one asyncio loop.

It keeps the semantics of a real broker (see ``interface``): records travel in
their wire form, fan-out subscriptions have bounded queues that drop on overflow
(level-triggered: the receiver's resync repairs), servers of a topic compete,
and a call waits for a server up to its timeout.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Iterable

from stackbox.bus import codec, interface, messages

LOG = logging.getLogger(__name__)

_CLOSED = object()


class MemorySubscription:
    def __init__(self, bus: Bus, topics: frozenset[str], maxsize: int) -> None:
        self._bus = bus
        self.topics = topics
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize + 1)
        self._maxsize = maxsize
        self.closed = False
        # Messages lost to a full queue (counted so tests and logs can see it).
        self.dropped = 0

    def _offer(self, data: bytes) -> None:
        if self.closed:
            return
        if self._queue.qsize() >= self._maxsize:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                LOG.warning(
                    "bus: a subscriber to %s is behind; %d messages dropped",
                    ",".join(sorted(self.topics)),
                    self.dropped,
                )
            return
        self._queue.put_nowait(data)

    async def get(self) -> codec.Record:
        if self.closed and self._queue.empty():
            raise interface.Closed("subscription closed")
        item = await self._queue.get()
        if item is _CLOSED:
            raise interface.Closed("subscription closed")
        assert isinstance(item, bytes)
        record: codec.Record = codec.loads(item)
        return record

    async def __aiter__(self) -> AsyncIterator[codec.Record]:
        while True:
            try:
                yield await self.get()
            except interface.Closed:
                return

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._bus._unsubscribe(self)
        self._queue.put_nowait(_CLOSED)


class MemoryService:
    def __init__(self, bus: Bus, topic: str, handler: interface.Handler) -> None:
        self._bus = bus
        self.topic = topic
        self.handler = handler

    def close(self) -> None:
        self._bus._unserve(self)


class Bus:
    """Publish/subscribe by topic and request/response RPC, in memory."""

    def __init__(self, queue_size: int = 10000) -> None:
        self._subscriptions: dict[str, list[MemorySubscription]] = {}
        self._services: dict[str, list[MemoryService]] = {}
        self._turns: dict[str, itertools.count[int]] = {}
        # Casts on their way to a server (cancelled when the bus closes).
        self._casts: set[asyncio.Task[None]] = set()
        self._services_changed = asyncio.Event()
        self._queue_size = queue_size
        self._closed = False

    # --- publish / subscribe ------------------------------------------------------------------

    async def publish(self, topic: str, record: codec.Record) -> None:
        if self._closed:
            raise interface.Closed("bus closed")
        data = codec.dumps(record)
        for subscription in list(self._subscriptions.get(topic, ())):
            subscription._offer(data)

    def subscribe(self, topics: Iterable[str]) -> MemorySubscription:
        if self._closed:
            raise interface.Closed("bus closed")
        subscription = MemorySubscription(self, frozenset(topics), self._queue_size)
        for topic in subscription.topics:
            self._subscriptions.setdefault(topic, []).append(subscription)
        return subscription

    def _unsubscribe(self, subscription: MemorySubscription) -> None:
        for topic in subscription.topics:
            subscribers = self._subscriptions.get(topic, [])
            if subscription in subscribers:
                subscribers.remove(subscription)

    # --- request / response -------------------------------------------------------------------

    def serve(self, topic: str, handler: interface.Handler) -> MemoryService:
        if self._closed:
            raise interface.Closed("bus closed")
        service = MemoryService(self, topic, handler)
        self._services.setdefault(topic, []).append(service)
        self._services_changed.set()
        self._services_changed = asyncio.Event()
        return service

    def _unserve(self, service: MemoryService) -> None:
        servers = self._services.get(service.topic, [])
        if service in servers:
            servers.remove(service)

    async def _server_for(self, topic: str, deadline: float) -> MemoryService:
        loop = asyncio.get_running_loop()
        while True:
            servers = self._services.get(topic)
            if servers:
                turn = next(self._turns.setdefault(topic, itertools.count()))
                return servers[turn % len(servers)]
            if self._closed:
                raise interface.Closed("bus closed")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise interface.CallTimeout(f"nobody serves {topic}")
            try:
                async with asyncio.timeout(remaining):
                    await self._services_changed.wait()
            except TimeoutError:
                raise interface.CallTimeout(f"nobody serves {topic}") from None

    async def call(self, topic: str, request: codec.Record, timeout: float = 30.0) -> codec.Record:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        wire = codec.dumps(request)
        service = await self._server_for(topic, deadline)
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that arrives as the handler finishes, and the caller's task
            # would then never stop.
            async with asyncio.timeout_at(deadline):
                answer = await service.handler(codec.loads(wire))
        except TimeoutError:
            raise interface.CallTimeout(f"{type(request).__name__} on {topic}: no answer") from None
        except Exception as exc:  # the server's failure, as a broker would carry it back
            LOG.debug("bus: %s on %s failed", type(request).__name__, topic, exc_info=True)
            answer = messages.Failure(type(exc).__name__, str(exc))
        result = codec.loads(codec.dumps(answer))
        if isinstance(result, messages.Failure):
            raise interface.RemoteError(result.error_type, result.message)
        assert isinstance(result, codec.Record)
        return result

    async def cast(self, topic: str, request: codec.Record, ttl: float = 30.0) -> None:
        if self._closed:
            raise interface.Closed("bus closed")
        wire = codec.dumps(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ttl

        async def deliver() -> None:
            try:
                service = await self._server_for(topic, deadline)
                await service.handler(codec.loads(wire))
            except (interface.CallTimeout, interface.Closed):
                LOG.debug("bus: a cast of %s on %s was dropped", type(request).__name__, topic)
            except Exception:  # the server's failure: nobody waits for it
                LOG.debug("bus: a cast on %s failed", topic, exc_info=True)

        task = loop.create_task(deliver())
        self._casts.add(task)
        task.add_done_callback(self._casts.discard)

    async def close(self) -> None:
        self._closed = True
        for task in list(self._casts):
            task.cancel()
        for subscribers in list(self._subscriptions.values()):
            for subscription in list(subscribers):
                subscription.close()
        self._services.clear()
        self._services_changed.set()
