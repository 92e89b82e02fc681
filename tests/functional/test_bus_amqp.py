"""The bus contract, on both buses: the memory bus and the AMQP bus on a real RabbitMQ.

The AMQP runs need a broker: STACKBOX_TEST_RABBIT is its URL (`make test` runs under
scripts/with-rabbitmq, which starts a private one and also sets STACKBOX_TEST_RABBITMQCTL,
a rabbitmqctl bound to that node). Unset, they are skipped, saying why.

"Another process" is the same bus in memory and a connection of its own on AMQP, so
every scenario also checks that records really cross the broker. Topics are unique per
test: tests of parallel workers share one broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import subprocess
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import pytest
from yarl import URL

from stackbox.bus import amqp, codec, factory, interface, memory, messages, specs

RABBIT_URL = os.environ.get("STACKBOX_TEST_RABBIT", "")
RABBITMQCTL = os.environ.get("STACKBOX_TEST_RABBITMQCTL", "")
SKIP_REASON = (
    "STACKBOX_TEST_RABBIT is not set: no RabbitMQ broker to test against "
    "(`make test` starts one; or run under scripts/with-rabbitmq)"
)
needs_rabbit = pytest.mark.skipif(not RABBIT_URL, reason=SKIP_REASON)

# How long "nothing else arrived" is watched for.
QUIET = 0.3

AnyBus = memory.Bus | amqp.Bus


class Buses:
    """The buses of one test, all closed at its end."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.opened: list[AnyBus] = []

    async def new(self, **options: Any) -> AnyBus:
        bus: AnyBus
        if self.kind == "memory":
            bus = memory.Bus(**options)
        else:
            bus = await amqp.Bus.open(RABBIT_URL, reconnect_interval=0.2, **options)
        self.opened.append(bus)
        return bus

    async def peer(self, bus: AnyBus) -> AnyBus:
        """What another process uses: the same bus in memory, another connection on AMQP."""
        return bus if self.kind == "memory" else await self.new()

    async def close(self) -> None:
        for bus in self.opened:
            await bus.close()


Scenario = Callable[[Buses], Awaitable[None]]


def _run(kind: str, scenario: Scenario) -> None:
    async def main() -> None:
        buses = Buses(kind)
        try:
            await scenario(buses)
        finally:
            await buses.close()

    asyncio.run(asyncio.wait_for(main(), 60))


@pytest.fixture(params=["memory", pytest.param("amqp", marks=needs_rabbit)])
def run(request: pytest.FixtureRequest) -> Callable[[Scenario], None]:
    return functools.partial(_run, request.param)


def unique(name: str) -> str:
    return f"test-{uuid.uuid4().hex[:10]}.{name}"


async def ready(*items: Any) -> None:
    """Across processes a subscriber (or server) counts once the broker routes to it; the
    memory bus has nothing to wait for."""
    for item in items:
        wait = getattr(item, "ready", None)
        if wait is not None:
            await wait()


async def nothing_more(*subscriptions: interface.Subscription) -> None:
    for subscription in subscriptions:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(subscription.get(), QUIET)


async def echo(request: codec.Record) -> codec.Record:
    return request


async def dhcp_networks(request: codec.Record) -> codec.Record:
    assert isinstance(request, messages.GetDhcpNetworks)
    if request.host == "broken":
        raise LookupError("no such host")
    return messages.DhcpNetworks(request.host, ("n1",))


# --- publish / subscribe --------------------------------------------------------------------


def test_publish_fans_out_to_every_subscriber_by_topic(run: Callable[[Scenario], None]) -> None:
    async def scenario(buses: Buses) -> None:
        controller = await buses.new()
        agent1, agent2 = await buses.peer(controller), await buses.peer(controller)
        everyone_topic = unique("network")
        h1, h2 = f"{everyone_topic}.h1", f"{everyone_topic}.h2"
        everyone = agent1.subscribe([everyone_topic])
        host1 = agent2.subscribe([everyone_topic, h1])
        host2 = agent1.subscribe([h2])
        await ready(everyone, host1, host2)

        await controller.publish(everyone_topic, messages.Nudge("network", "n1"))
        await controller.publish(h1, messages.Nudge("port", "p1"))
        assert await everyone.get() == messages.Nudge("network", "n1")
        assert await host1.get() == messages.Nudge("network", "n1")
        assert await host1.get() == messages.Nudge("port", "p1")
        await controller.publish(h2, messages.Nudge("port", "p2"))
        assert await host2.get() == messages.Nudge("port", "p2")
        await nothing_more(everyone, host1, host2)

    run(scenario)


def test_subscribe_then_publish_on_one_bus_loses_nothing(run: Callable[[Scenario], None]) -> None:
    async def scenario(buses: Buses) -> None:
        bus = await buses.new()
        topic = unique("t")
        subscription = bus.subscribe([topic])
        # No waiting: the bus itself makes its subscriptions routable before it publishes.
        await bus.publish(topic, messages.Nudge("port", "p1"))
        assert await subscription.get() == messages.Nudge("port", "p1")

    run(scenario)


def test_nothing_is_kept_for_a_subscriber_that_did_not_exist(
    run: Callable[[Scenario], None],
) -> None:
    async def scenario(buses: Buses) -> None:
        bus = await buses.new()
        topic = unique("t")
        await bus.publish(topic, messages.Nudge("port", "early"))
        late = bus.subscribe([topic])
        await bus.publish(topic, messages.Nudge("port", "p1"))
        assert await late.get() == messages.Nudge("port", "p1")
        await nothing_more(late)

    run(scenario)


def test_received_records_are_copies_in_wire_form(run: Callable[[Scenario], None]) -> None:
    async def scenario(buses: Buses) -> None:
        bus = await buses.new()
        topic = unique("t")
        subscription = bus.subscribe([topic])
        sent = messages.Heartbeat("DHCP agent", "b", topic, "h", configurations={"n": [1]})
        await bus.publish(topic, sent)
        got = await subscription.get()
        assert got == sent and got is not sent
        assert isinstance(got, messages.Heartbeat) and got.configurations == {"n": [1]}

    run(scenario)


def test_a_full_subscriber_loses_records_and_counts_them(run: Callable[[Scenario], None]) -> None:
    async def scenario(buses: Buses) -> None:
        bus = await buses.new(queue_size=2)
        topic = unique("t")
        slow = bus.subscribe([topic])
        for i in range(5):
            await bus.publish(topic, messages.Nudge("port", f"p{i}"))
        async with asyncio.timeout(10):
            while slow.dropped < 3:
                await asyncio.sleep(0.01)
        assert slow.dropped == 3
        assert [(await slow.get()).id for _ in range(2)] == ["p0", "p1"]
        await nothing_more(slow)

    run(scenario)


def test_a_closed_subscription_ends_and_gets_nothing_more(
    run: Callable[[Scenario], None],
) -> None:
    async def scenario(buses: Buses) -> None:
        bus = await buses.new()
        topic = unique("t")
        subscription = bus.subscribe([topic])
        await bus.publish(topic, messages.Nudge("port", "p1"))
        assert await subscription.get() == messages.Nudge("port", "p1")
        subscription.close()
        await bus.publish(topic, messages.Nudge("port", "p2"))
        assert [record async for record in subscription] == []
        with pytest.raises(interface.Closed):
            await subscription.get()

    run(scenario)


# --- request / response ---------------------------------------------------------------------


def test_call_gets_the_answer_and_remote_errors(run: Callable[[Scenario], None]) -> None:
    async def scenario(buses: Buses) -> None:
        controller = await buses.new()
        agent = await buses.peer(controller)
        topic = unique("controller")
        controller.serve(topic, dhcp_networks)
        answer = await agent.call(topic, messages.GetDhcpNetworks("h1"))
        assert answer == messages.DhcpNetworks("h1", ("n1",))
        with pytest.raises(interface.RemoteError) as caught:
            await agent.call(topic, messages.GetDhcpNetworks("broken"))
        assert caught.value.error_type == "LookupError"
        assert "no such host" in caught.value.message

    run(scenario)


def test_call_waits_for_a_server_then_times_out(run: Callable[[Scenario], None]) -> None:
    async def scenario(buses: Buses) -> None:
        agent = await buses.new()
        controller = await buses.peer(agent)
        with pytest.raises(interface.CallTimeout):
            await agent.call(unique("nobody"), messages.GetDhcpNetworks("h"), timeout=0.2)
        topic = unique("late")
        pending = asyncio.create_task(agent.call(topic, messages.GetDhcpNetworks("h"), timeout=10))
        await asyncio.sleep(0.3)
        assert not pending.done()
        controller.serve(topic, dhcp_networks)
        assert (await pending).network_ids == ("n1",)

    run(scenario)


def test_a_request_nobody_took_in_time_is_never_served(run: Callable[[Scenario], None]) -> None:
    async def scenario(buses: Buses) -> None:
        agent = await buses.new()
        controller = await buses.peer(agent)
        topic = unique("controller")
        with pytest.raises(interface.CallTimeout):
            await agent.call(topic, messages.GetDhcpNetworks("given-up"), timeout=0.2)
        served: list[str] = []

        async def handle(request: codec.Record) -> codec.Record:
            assert isinstance(request, messages.GetDhcpNetworks)
            served.append(request.host)
            return messages.DhcpNetworks(request.host)

        controller.serve(topic, handle)
        assert await agent.call(topic, messages.GetDhcpNetworks("h1")) == messages.DhcpNetworks(
            "h1"
        )
        await asyncio.sleep(QUIET)
        assert served == ["h1"]

    run(scenario)


def test_a_slow_server_times_out(run: Callable[[Scenario], None]) -> None:
    async def slow(request: codec.Record) -> codec.Record:
        await asyncio.sleep(5)
        return request

    async def scenario(buses: Buses) -> None:
        controller = await buses.new()
        agent = await buses.peer(controller)
        topic = unique("slow")
        controller.serve(topic, slow)
        with pytest.raises(interface.CallTimeout):
            await agent.call(topic, messages.GetDhcpNetworks("h"), timeout=0.3)

    run(scenario)


def test_servers_of_a_topic_share_the_requests_and_answer_once(
    run: Callable[[Scenario], None],
) -> None:
    async def scenario(buses: Buses) -> None:
        agent = await buses.new()
        controller_a, controller_b = await buses.peer(agent), await buses.peer(agent)
        topic = unique("controller")
        seen: list[str] = []

        def server(name: str) -> interface.Handler:
            async def handle(request: codec.Record) -> codec.Record:
                assert isinstance(request, messages.GetDhcpNetworks)
                seen.append(name)
                return messages.DhcpNetworks(request.host, (name,))

            return handle

        first = controller_a.serve(topic, server("a"))
        second = controller_b.serve(topic, server("b"))
        await ready(first, second)
        for _ in range(4):
            await agent.call(topic, messages.GetDhcpNetworks("h"))
        assert sorted(seen) == ["a", "a", "b", "b"]

        # Many at once: each answered exactly once, with its own answer, by one server.
        seen.clear()
        hosts = [f"h{i}" for i in range(20)]
        answers = await asyncio.gather(
            *(agent.call(topic, messages.GetDhcpNetworks(host)) for host in hosts)
        )
        assert [answer.host for answer in answers] == hosts
        assert len(seen) == 20 and set(seen) == {"a", "b"}
        assert [answer.network_ids[0] for answer in answers].count("a") == seen.count("a")

        first.close()
        seen.clear()
        for _ in range(3):
            await agent.call(topic, messages.GetDhcpNetworks("h"))
        assert seen == ["b", "b", "b"]

    run(scenario)


def test_a_cast_reaches_one_server_and_returns_at_once(
    run: Callable[[Scenario], None],
) -> None:
    async def scenario(buses: Buses) -> None:
        bus = await buses.new()
        peer = await buses.peer(bus)
        topic = unique("cast")
        handled: list[str] = []
        done = asyncio.Event()
        release = asyncio.Event()

        async def server(request: codec.Record) -> codec.Record:
            await release.wait()  # the caster must not wait for this
            assert isinstance(request, messages.Nudge)
            handled.append(request.id)
            if len(handled) == 10:
                done.set()
            return request

        first, second = peer.serve(topic, server), peer.serve(topic, server)
        await ready(first, second)
        async with asyncio.timeout(5):
            for i in range(10):
                await bus.cast(topic, messages.Nudge("port", f"p{i}"))
        assert handled == []
        release.set()
        await asyncio.wait_for(done.wait(), 10)
        await asyncio.sleep(QUIET)
        # Each cast was handled by exactly one of the two servers.
        assert sorted(handled) == sorted(f"p{i}" for i in range(10))

    run(scenario)


def test_real_messages_round_trip_through_the_bus(run: Callable[[Scenario], None]) -> None:
    async def scenario(buses: Buses) -> None:
        controller = await buses.new()
        agent = await buses.peer(controller)
        topic = unique("echo")
        controller.serve(topic, echo)
        port = specs.PortSpec(
            id="p1",
            network_id="n1",
            mac_address="fa:16:3e:00:00:01",
            fixed_ips=(specs.FixedIP("s1", "10.0.0.5"), specs.FixedIP("s2", "fd00::5")),
            binding_profile={"capabilities": ["switchdev"]},
            segment=specs.SegmentSpec("vxlan", None, 101),
        )
        ports = messages.PortsForHost("h1", (port,))
        back = await agent.call(topic, ports)
        assert back == ports and back is not ports
        assert isinstance(back, messages.PortsForHost)
        assert isinstance(back.ports[0].fixed_ips, tuple)
        assert back.ports[0].segment == specs.SegmentSpec("vxlan", None, 101)

        heartbeat = messages.Heartbeat(
            "Open vSwitch agent",
            "stackbox-agent",
            "N/A",
            "h1",
            availability_zone=None,
            configurations={"bridge_mappings": {"public": "br-ex"}, "devices": 3},
            start_flag=True,
        )
        assert await agent.call(topic, heartbeat) == heartbeat
        failure = messages.Failure("ValueError", "echoed, not raised")
        # A Failure answer is how a server reports its error: the caller sees RemoteError.
        with pytest.raises(interface.RemoteError) as caught:
            await agent.call(topic, failure)
        assert caught.value.error_type == "ValueError"

    run(scenario)


def test_a_closed_bus_refuses_work(run: Callable[[Scenario], None]) -> None:
    async def scenario(buses: Buses) -> None:
        bus = await buses.new()
        topic = unique("t")
        subscription = bus.subscribe([topic])
        await bus.close()
        with pytest.raises(interface.Closed):
            await bus.publish(topic, messages.Nudge("port", "p1"))
        with pytest.raises(interface.Closed):
            await bus.call(topic, messages.GetDhcpNetworks("h"), timeout=0.2)
        with pytest.raises(interface.Closed):
            bus.subscribe([topic])
        with pytest.raises(interface.Closed):
            await subscription.get()

    run(scenario)


# --- AMQP only: connecting, reconnecting ----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _with_port(url: str, port: int) -> str:
    return str(URL(url).with_port(port))


def test_the_factory_opens_the_bus_a_url_names() -> None:
    async def scenario() -> None:
        for url in ("", "memory://"):
            bus = await factory.open_bus(url)
            assert isinstance(bus, memory.Bus)
            await bus.close()
        with pytest.raises(ValueError, match="unknown bus URL"):
            await factory.open_bus("redis://user:secret@127.0.0.1/0")
        if RABBIT_URL:
            bus = await factory.open_bus(RABBIT_URL)
            assert isinstance(bus, amqp.Bus) and bus.connected
            await bus.close()

    asyncio.run(scenario())


@needs_rabbit
def test_an_unreachable_broker_is_a_clear_error() -> None:
    url = _with_port(RABBIT_URL, _free_port())
    password = URL(RABBIT_URL).password
    assert password

    async def scenario() -> None:
        with pytest.raises(amqp.Unreachable) as caught:
            await amqp.Bus.open(url, connect_timeout=5)
        message = str(caught.value)
        assert "cannot reach the AMQP broker" in message and str(URL(url).port) in message
        assert password not in message

        wrong = str(URL(RABBIT_URL).with_password("not-the-password"))
        with pytest.raises(amqp.Unreachable) as caught:
            await amqp.Bus.open(wrong, connect_timeout=5)
        assert "not-the-password" not in str(caught.value)

    asyncio.run(asyncio.wait_for(scenario(), 30))


@needs_rabbit
def test_a_subscriber_skips_records_it_cannot_read() -> None:
    async def scenario() -> None:
        bus = await amqp.Bus.open(RABBIT_URL)
        try:
            topic = unique("network")
            subscription = bus.subscribe([topic])
            await subscription.ready()
            # What a newer controller might send: a record this side does not know.
            connection = await aio_pika.connect(RABBIT_URL)
            async with connection:
                channel = await connection.channel()
                exchange = await channel.get_exchange(amqp.EXCHANGE)
                newer = aio_pika.Message(b'{"_type":"NudgeFromTheFuture","id":"x"}')
                await exchange.publish(newer, routing_key=topic)
            await bus.publish(topic, messages.Nudge("port", "p1"))
            assert await subscription.get() == messages.Nudge("port", "p1")
        finally:
            await bus.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))


async def _until_answered(bus: AnyBus, topic: str, within: float = 30) -> codec.Record:
    """Call until the bus has reconnected and the server answers."""
    async with asyncio.timeout(within):
        while True:
            try:
                return await bus.call(topic, messages.GetDhcpNetworks("h"), timeout=1)
            except interface.CallTimeout:
                continue


async def _published_and_received(
    publisher: AnyBus, subscription: interface.Subscription, topic: str
) -> None:
    """Publish until a record arrives (what was published while the route was still
    being restored may be lost: the bus is level-triggered)."""
    async with asyncio.timeout(30):
        while True:
            marker = uuid.uuid4().hex
            with contextlib.suppress(amqp.Disconnected):
                await publisher.publish(topic, messages.Nudge("port", marker))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1):
                    while (await subscription.get()).id != marker:
                        pass
                    return


def _rabbitmqctl(*args: str) -> str:
    done = subprocess.run(
        [RABBITMQCTL, *args], capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout


def _connections_named(name: str) -> list[str]:
    """The broker's ids of the connections that call themselves ``name``."""
    listing = _rabbitmqctl("list_connections", "pid", "client_properties", "--silent")
    return [
        line.split("\t", 1)[0]
        for line in listing.splitlines()
        if f'{{"connection_name","{name}"}}' in line
    ]


@pytest.mark.skipif(
    not (RABBIT_URL and RABBITMQCTL),
    reason="needs the private broker of scripts/with-rabbitmq (STACKBOX_TEST_RABBITMQCTL)",
)
def test_the_bus_recovers_when_the_broker_closes_its_connections() -> None:
    name = f"stackbox-test-{uuid.uuid4().hex[:10]}"

    async def scenario() -> None:
        controller = await amqp.Bus.open(RABBIT_URL, reconnect_interval=0.2, name=name)
        agent = await amqp.Bus.open(RABBIT_URL, reconnect_interval=0.2, name=name)
        try:
            topic, rpc_topic = unique("network"), unique("controller")
            subscription = agent.subscribe([topic])
            controller.serve(rpc_topic, dhcp_networks)
            await _published_and_received(controller, subscription, topic)
            assert await _until_answered(agent, rpc_topic, within=5)

            # Only this test's connections: other tests may share the broker.
            ours = await asyncio.to_thread(_connections_named, name)
            assert len(ours) == 2
            for pid in ours:
                await asyncio.to_thread(_rabbitmqctl, "close_connection", pid, "test: go away")

            # Both sides reconnect on their own and declare their queues again.
            assert await _until_answered(agent, rpc_topic) == messages.DhcpNetworks("h", ("n1",))
            await _published_and_received(controller, subscription, topic)
            # They are new connections: the old ones really were closed.
            again = await asyncio.to_thread(_connections_named, name)
            assert len(again) == 2 and not set(again) & set(ours)
        finally:
            await agent.close()
            await controller.close()

    asyncio.run(asyncio.wait_for(scenario(), 180))


class Proxy:
    """A TCP hop between the bus and the broker that can be cut (a network outage)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = _free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._relay, "127.0.0.1", self.port, reuse_address=True
        )

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._writers -= {writer, up_writer}


@needs_rabbit
def test_while_the_broker_is_unreachable_calls_time_out_then_work_again() -> None:
    async def scenario() -> None:
        proxy = Proxy(URL(RABBIT_URL).port or 5672)
        await proxy.start()
        controller = await amqp.Bus.open(RABBIT_URL, reconnect_interval=0.2)
        agent = await amqp.Bus.open(
            _with_port(RABBIT_URL, proxy.port), reconnect_interval=0.2, publish_timeout=0.5
        )
        try:
            topic = unique("controller")
            controller.serve(topic, dhcp_networks)
            assert await _until_answered(agent, topic, within=5)

            await proxy.cut()
            with pytest.raises(interface.CallTimeout):
                await agent.call(topic, messages.GetDhcpNetworks("h"), timeout=1)
            with pytest.raises(amqp.Disconnected):
                await agent.publish(unique("t"), messages.Nudge("port", "p1"))

            await proxy.start()
            assert await _until_answered(agent, topic) == messages.DhcpNetworks("h", ("n1",))
        finally:
            await agent.close()
            await controller.close()
            with contextlib.suppress(AssertionError, RuntimeError):
                await proxy.cut()

    asyncio.run(asyncio.wait_for(scenario(), 120))
