"""The bus across hosts: the ``interface`` contract on RabbitMQ (AMQP 0-9-1, via aio-pika).

The mapping (see ``interface``): one durable topic exchange ``stackbox`` carries
``publish``; each subscription is an exclusive auto-delete queue of its own bound
to its topics. Requests travel apart from nudges, through the default exchange to
a durable queue named after the topic that every server of the topic consumes
(competing consumers, so one of them answers); callers declare it too, so a request
made before any server exists waits in it — for its timeout only (per-message TTL),
so nobody answers a caller that has given up. Answers come back to the caller's
exclusive reply queue, matched by ``correlation_id``.

aio-pika's robust connection reconnects on its own and re-declares every queue,
binding and consumer; our queues are named by us (a server-named queue could not be
re-declared under its old name). While the broker is away, ``publish`` raises
``Disconnected`` after ``publish_timeout`` (the outbox relay keeps the rows and
retries), and ``call`` fails with ``CallTimeout``.

``subscribe`` and ``serve`` return at once and declare in the background; the same
bus's ``publish`` and ``call`` wait for those declarations first, so "subscribe,
then publish" and "serve, then call" behave as on the memory bus.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterable
from typing import Any

import aio_pika
from aio_pika import abc as amqp_abc
from aio_pika import exceptions as amqp_errors
from yarl import URL

from stackbox.bus import codec, interface, messages

LOG = logging.getLogger(__name__)

EXCHANGE = "stackbox"
CONTENT_TYPE = "application/json"

# What a broken or reconnecting connection raises under aio-pika.
_LINK_ERRORS = (amqp_errors.AMQPError, ConnectionError, OSError, RuntimeError)


class Unreachable(interface.BusError):
    """The broker could not be reached (or refused us) when connecting."""


class Disconnected(interface.BusError):
    """The broker is away: a published record could not be handed over in time."""


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else str(parsed)


_CLOSED = object()


async def _close_channel(channel: amqp_abc.AbstractRobustChannel) -> None:
    try:
        await channel.close()
    except _LINK_ERRORS as exc:  # the connection is gone already; so is the channel
        LOG.debug("bus: closing a channel: %s", exc)


class AmqpSubscription:
    """A queue of our own bound to ``topics``; received records wait in a bounded local
    queue that drops on overflow, as the memory bus does."""

    def __init__(self, bus: Bus, topics: frozenset[str], maxsize: int) -> None:
        self._bus = bus
        self.topics = topics
        self.queue_name = f"{EXCHANGE}.sub.{uuid.uuid4().hex}"
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize + 1)
        self._maxsize = maxsize
        self._channel: amqp_abc.AbstractRobustChannel | None = None
        self.closed = False
        self.dropped = 0
        self._setup = bus._start(self._declare(), f"subscribe {','.join(sorted(topics))}")
        self._setup.add_done_callback(self._setup_done)

    async def _declare(self) -> None:
        channel = self._channel = self._bus._new_channel(publisher_confirms=False)
        await channel.initialize()
        exchange = await channel.get_exchange(EXCHANGE, ensure=False)
        queue = await channel.declare_queue(self.queue_name, exclusive=True, auto_delete=True)
        for topic in sorted(self.topics):
            await queue.bind(exchange, routing_key=topic)
        await queue.consume(self._on_message, no_ack=True)

    def _setup_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        LOG.error("bus: subscribing to %s failed: %s", sorted(self.topics), task.exception())
        if not self.closed:
            self._queue.put_nowait(task.exception())

    async def ready(self) -> None:
        """Wait until the broker routes the topics here (raises if that failed)."""
        if self.closed:
            raise interface.Closed("subscription closed")
        await asyncio.shield(self._setup)

    async def _on_message(self, message: amqp_abc.AbstractIncomingMessage) -> None:
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
        self._queue.put_nowait(message.body)

    async def get(self) -> codec.Record:
        while True:
            if self.closed and self._queue.empty():
                raise interface.Closed("subscription closed")
            item = await self._queue.get()
            if item is _CLOSED:
                raise interface.Closed("subscription closed")
            if isinstance(item, BaseException):
                self._queue.put_nowait(item)  # every later get fails the same way
                raise interface.BusError(f"subscription failed: {item}") from item
            assert isinstance(item, bytes)
            try:
                record: codec.Record = codec.loads(item)
            except codec.DecodeError as exc:
                # A record from a newer sender: skipping it costs what a lost nudge costs.
                LOG.warning("bus: skipping a record on %s: %s", ",".join(self.topics), exc)
                continue
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
        self._queue.put_nowait(_CLOSED)
        self._bus._forget(self)
        self._setup.cancel()
        # Closing the channel cancels the consumer; the broker then deletes the queue.
        if self._channel is not None:
            self._bus._start(_close_channel(self._channel), "unsubscribe")


class AmqpService:
    """One server of ``topic``: a consumer of the topic's shared request queue."""

    def __init__(self, bus: Bus, topic: str, handler: interface.Handler, prefetch: int) -> None:
        self._bus = bus
        self.topic = topic
        self.handler = handler
        self._prefetch = prefetch
        self._channel: amqp_abc.AbstractRobustChannel | None = None
        self.closed = False
        self._setup = bus._start(self._declare(), f"serve {topic}")
        self._setup.add_done_callback(self._setup_done)

    async def _declare(self) -> None:
        # A channel per server: its prefetch bounds the requests it handles at once.
        channel = self._channel = self._bus._new_channel(publisher_confirms=False)
        await channel.initialize()
        await channel.set_qos(prefetch_count=self._prefetch)
        queue = await channel.declare_queue(self.topic, durable=True)
        await queue.consume(self._on_request)

    def _setup_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            LOG.error("bus: serving %s failed: %s", self.topic, task.exception())

    async def ready(self) -> None:
        """Wait until this server consumes its queue (raises if that failed)."""
        if self.closed:
            raise interface.Closed("service closed")
        await asyncio.shield(self._setup)

    async def _on_request(self, message: amqp_abc.AbstractIncomingMessage) -> None:
        if self.closed:
            return  # unacknowledged: the channel's closing hands it to another server
        try:
            request = codec.loads(message.body)
            answer = await self.handler(request)
            body = codec.dumps(answer)
        except Exception as exc:  # the server's failure travels back to the caller
            LOG.debug("bus: a request on %s failed", self.topic, exc_info=True)
            body = codec.dumps(messages.Failure(type(exc).__name__, str(exc)))
        try:
            if message.reply_to and self._channel is not None:
                reply = aio_pika.Message(
                    body,
                    content_type=CONTENT_TYPE,
                    correlation_id=message.correlation_id,
                    app_id="stackbox",
                )
                await self._channel.default_exchange.publish(
                    reply, routing_key=message.reply_to, mandatory=False
                )
            await message.ack()
        except _LINK_ERRORS as exc:
            # The channel went away: the broker hands the request to a server again.
            LOG.info("bus: could not answer a request on %s: %s", self.topic, exc)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._bus._forget(self)
        self._setup.cancel()
        # Unacknowledged requests go back to the queue, for the other servers.
        if self._channel is not None:
            self._bus._start(_close_channel(self._channel), f"stop serving {self.topic}")


class Bus:
    """Publish/subscribe by topic and request/response RPC, on a RabbitMQ broker.

    ``queue_size`` bounds each subscription's local buffer, ``prefetch`` the requests
    one server handles at once; ``reconnect_interval`` paces reconnection attempts.
    """

    def __init__(
        self,
        url: str,
        *,
        queue_size: int = 10000,
        prefetch: int = 16,
        connect_timeout: float = 10.0,
        reconnect_interval: float = 2.0,
        publish_timeout: float = 5.0,
        name: str = "",
    ) -> None:
        self.url = url
        # How the broker's connection list names us.
        self.name = name or f"stackbox {socket.gethostname()} pid {os.getpid()}"
        self._queue_size = queue_size
        self._prefetch = prefetch
        self._connect_timeout = connect_timeout
        self._reconnect_interval = reconnect_interval
        self.publish_timeout = publish_timeout
        self._connection: amqp_abc.AbstractRobustConnection | None = None
        self._channel: amqp_abc.AbstractRobustChannel | None = None
        self._exchange: amqp_abc.AbstractExchange | None = None
        self._reply_queue: amqp_abc.AbstractQueue | None = None
        self._request_queues: set[str] = set()
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self._subscriptions: set[AmqpSubscription] = set()
        self._services: set[AmqpService] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._setups: set[asyncio.Task[Any]] = set()
        self._closed = False

    @classmethod
    async def open(cls, url: str, **options: Any) -> Bus:
        bus = cls(url, **options)
        await bus.connect()
        return bus

    async def connect(self) -> None:
        """Connect, declare the exchange and our reply queue; ``Unreachable`` if we cannot."""
        if self._connection is not None:
            return
        try:
            connection = await aio_pika.connect_robust(
                self.url,
                timeout=self._connect_timeout,
                reconnect_interval=self._reconnect_interval,
                client_properties={"connection_name": self.name},
            )
        except (TimeoutError, *_LINK_ERRORS) as exc:
            reason = str(exc) or type(exc).__name__
            raise Unreachable(
                f"cannot reach the AMQP broker {redacted(self.url)}: {reason}"
            ) from None
        self._connection = connection
        try:
            channel = await connection.channel()
            self._exchange = await channel.declare_exchange(
                EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
            )
            self._reply_queue = await channel.declare_queue(
                f"{EXCHANGE}.reply.{uuid.uuid4().hex}", exclusive=True, auto_delete=True
            )
            await self._reply_queue.consume(self._on_reply, no_ack=True)
            self._channel = channel
        except BaseException:
            self._connection = None
            await connection.close()
            raise
        connection.reconnect_callbacks.add(self._on_reconnect)

    def _on_reconnect(self, *_: Any) -> None:
        LOG.info("bus: reconnected to %s", redacted(self.url))
        # A request queue may have been deleted meanwhile: declare it again on next use.
        self._request_queues.clear()

    @property
    def connected(self) -> bool:
        connection = self._connection
        return connection is not None and not connection.is_closed and not self._closed

    # --- plumbing -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise interface.Closed("bus closed")
        if self._connection is None:
            raise interface.BusError("the AMQP bus is not connected: call connect() first")

    def _start(self, coro: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"bus: {what}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if what.startswith(("subscribe", "serve")):
            self._setups.add(task)
            task.add_done_callback(self._setups.discard)
        return task

    def _new_channel(self, publisher_confirms: bool) -> amqp_abc.AbstractRobustChannel:
        """A channel not yet opened (``initialize()`` opens it)."""
        assert self._connection is not None
        return self._connection.channel(publisher_confirms=publisher_confirms)

    async def _settle(self) -> None:
        """Wait for this bus's pending declarations (never cancelling them)."""
        if self._setups:
            await asyncio.wait(set(self._setups))

    def _forget(self, item: AmqpSubscription | AmqpService) -> None:
        if isinstance(item, AmqpSubscription):
            self._subscriptions.discard(item)
        else:
            self._services.discard(item)

    # --- publish / subscribe ------------------------------------------------------------------

    async def publish(self, topic: str, record: codec.Record) -> None:
        self._check_open()
        assert self._exchange is not None
        message = aio_pika.Message(
            codec.dumps(record),
            content_type=CONTENT_TYPE,
            type=type(record).__name__,
            app_id="stackbox",
        )
        try:
            async with asyncio.timeout(self.publish_timeout):
                await self._settle()
                # Confirmed by the broker: once this returns the record is routed.
                await self._exchange.publish(message, routing_key=topic, mandatory=False)
        except TimeoutError:
            raise Disconnected(f"{type(record).__name__} on {topic}: broker unreachable") from None
        except _LINK_ERRORS as exc:
            raise Disconnected(f"{type(record).__name__} on {topic}: {exc}") from exc

    def subscribe(self, topics: Iterable[str]) -> AmqpSubscription:
        self._check_open()
        subscription = AmqpSubscription(self, frozenset(topics), self._queue_size)
        self._subscriptions.add(subscription)
        return subscription

    # --- request / response -------------------------------------------------------------------

    def serve(self, topic: str, handler: interface.Handler) -> AmqpService:
        self._check_open()
        service = AmqpService(self, topic, handler, self._prefetch)
        self._services.add(service)
        return service

    async def _on_reply(self, message: amqp_abc.AbstractIncomingMessage) -> None:
        waiting = self._pending.get(message.correlation_id or "")
        if waiting is None or waiting.done():
            LOG.debug("bus: an answer nobody waits for (%s)", message.correlation_id)
            return
        waiting.set_result(message.body)

    async def _send_request(
        self, topic: str, body: bytes, correlation_id: str | None, deadline: float
    ) -> None:
        """Hand the request to the broker, retrying through a reconnect (the caller's
        deadline bounds it)."""
        loop = asyncio.get_running_loop()
        while True:
            channel, reply_queue = self._channel, self._reply_queue
            assert channel is not None and reply_queue is not None
            try:
                if topic not in self._request_queues:
                    # Declared by callers too, so a request waits for a server to come.
                    await channel.declare_queue(topic, durable=True, robust=False)
                    self._request_queues.add(topic)
                message = aio_pika.Message(
                    body,
                    content_type=CONTENT_TYPE,
                    correlation_id=correlation_id,
                    # A cast (no correlation id) wants no answer.
                    reply_to=reply_queue.name if correlation_id else None,
                    # Expires with the caller's patience (at least a millisecond).
                    expiration=max(deadline - loop.time(), 0.001),
                    app_id="stackbox",
                )
                await channel.default_exchange.publish(message, routing_key=topic, mandatory=False)
                return
            except _LINK_ERRORS as exc:
                if self._closed:
                    raise interface.Closed("bus closed") from None
                LOG.debug("bus: sending a request on %s failed (%s); retrying", topic, exc)
                await asyncio.sleep(0.2)

    async def call(self, topic: str, request: codec.Record, timeout: float = 30.0) -> codec.Record:
        self._check_open()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        correlation_id = uuid.uuid4().hex
        waiting: asyncio.Future[bytes] = loop.create_future()
        self._pending[correlation_id] = waiting
        try:
            async with asyncio.timeout_at(deadline):
                await self._settle()
                await self._send_request(topic, codec.dumps(request), correlation_id, deadline)
                body = await waiting
        except TimeoutError:
            raise interface.CallTimeout(f"{type(request).__name__} on {topic}: no answer") from None
        finally:
            self._pending.pop(correlation_id, None)
        result = codec.loads(body)
        if isinstance(result, messages.Failure):
            raise interface.RemoteError(result.error_type, result.message)
        assert isinstance(result, codec.Record)
        return result

    async def cast(self, topic: str, request: codec.Record, ttl: float = 30.0) -> None:
        self._check_open()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ttl
        try:
            async with asyncio.timeout_at(deadline):
                await self._settle()
                await self._send_request(topic, codec.dumps(request), None, deadline)
        except TimeoutError:
            raise interface.CallTimeout(f"{type(request).__name__} on {topic}: not sent") from None

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for subscription in list(self._subscriptions):
            subscription.close()
        for service in list(self._services):
            service.close()
        for waiting in self._pending.values():
            if not waiting.done():
                waiting.set_exception(interface.Closed("bus closed"))
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)
        if self._connection is not None:
            try:
                await self._connection.close()
            except _LINK_ERRORS as exc:
                LOG.debug("bus: closing the connection: %s", exc)
