"""The memory bus, the wire codec, and the agents' work queue."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from stackbox.agent import runtime
from stackbox.bus import codec, interface, memory, messages, specs


def run(test: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(test(), 10))


# --- codec ----------------------------------------------------------------------------------


def test_records_round_trip_through_json() -> None:
    port = specs.PortSpec(
        id="p1",
        network_id="n1",
        mac_address="fa:16:3e:00:00:01",
        fixed_ips=(specs.FixedIP("s1", "10.0.0.5"),),
        binding_profile={"capabilities": ["switchdev"]},
        segment=specs.SegmentSpec("vxlan", None, 101),
    )
    answer = messages.PortsForHost("h1", (port,))
    data = codec.dumps(answer)
    assert json.loads(data)["ports"][0]["fixed_ips"][0]["_type"] == "FixedIP"
    back = codec.loads(data)
    assert back == answer
    assert isinstance(back.ports, tuple) and isinstance(back.ports[0].fixed_ips, tuple)


def test_decoding_tolerates_newer_and_older_senders() -> None:
    newer = {"_type": "Nudge", "kind": "port", "id": "p1", "added_later": 1}
    assert codec.decode(newer) == messages.Nudge("port", "p1")
    older = {"_type": "PortSpec", "id": "p1", "network_id": "n1", "mac_address": "m"}
    assert codec.decode(older).admin_state_up is True
    with pytest.raises(codec.DecodeError):
        codec.decode({"_type": "NoSuchRecord"})
    with pytest.raises(codec.DecodeError):
        codec.decode({"_type": "Nudge", "kind": "port"})  # id is required


def test_what_cannot_travel_is_refused() -> None:
    @dataclasses.dataclass(frozen=True)
    class Carries(codec.Record):
        thing: Any

    with pytest.raises(TypeError):
        codec.dumps(Carries(object()))


def test_notify_and_the_bus_agree_on_topics() -> None:
    from stackbox.network import notify

    assert notify.BROADCAST == messages.NETWORK_TOPIC
    assert messages.host_topic("h1") == f"{notify.BROADCAST}.h1"


# --- publish / subscribe --------------------------------------------------------------------


def test_publish_fans_out_by_topic() -> None:
    async def scenario() -> None:
        bus = memory.Bus()
        everyone = bus.subscribe([messages.NETWORK_TOPIC])
        host1 = bus.subscribe([messages.NETWORK_TOPIC, messages.host_topic("h1")])
        host2 = bus.subscribe([messages.host_topic("h2")])
        await bus.publish(messages.NETWORK_TOPIC, messages.Nudge("network", "n1"))
        await bus.publish(messages.host_topic("h1"), messages.Nudge("port", "p1"))
        assert await everyone.get() == messages.Nudge("network", "n1")
        assert await host1.get() == messages.Nudge("network", "n1")
        assert await host1.get() == messages.Nudge("port", "p1")
        await bus.publish(messages.host_topic("h2"), messages.Nudge("port", "p2"))
        assert await host2.get() == messages.Nudge("port", "p2")
        # Nothing else arrived anywhere.
        for subscription in (everyone, host1, host2):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(subscription.get(), 0.05)

    run(scenario)


def test_received_records_are_copies_in_wire_form() -> None:
    async def scenario() -> None:
        bus = memory.Bus()
        sub = bus.subscribe(["t"])
        sent = messages.Heartbeat("DHCP agent", "b", "t", "h", configurations={"n": [1]})
        await bus.publish("t", sent)
        got = await sub.get()
        assert got == sent and got is not sent

    run(scenario)


def test_a_full_subscriber_loses_nudges_and_counts_them() -> None:
    async def scenario() -> None:
        bus = memory.Bus(queue_size=2)
        slow = bus.subscribe(["t"])
        for i in range(5):
            await bus.publish("t", messages.Nudge("port", f"p{i}"))
        assert slow.dropped == 3
        assert [(await slow.get()).id for _ in range(2)] == ["p0", "p1"]

    run(scenario)


def test_closed_subscription_ends_iteration_and_gets_nothing_more() -> None:
    async def scenario() -> None:
        bus = memory.Bus()
        sub = bus.subscribe(["t"])
        await bus.publish("t", messages.Nudge("port", "p1"))
        sub.close()
        await bus.publish("t", messages.Nudge("port", "p2"))
        seen = [record async for record in sub]
        assert seen == [messages.Nudge("port", "p1")]

    run(scenario)


# --- request / response ---------------------------------------------------------------------


async def _echo_host(request: codec.Record) -> codec.Record:
    assert isinstance(request, messages.GetDhcpNetworks)
    if request.host == "broken":
        raise LookupError("no such host")
    return messages.DhcpNetworks(request.host, ("n1",))


def test_call_gets_the_answer_and_remote_errors() -> None:
    async def scenario() -> None:
        bus = memory.Bus()
        bus.serve(messages.CONTROLLER_TOPIC, _echo_host)
        answer = await bus.call(messages.CONTROLLER_TOPIC, messages.GetDhcpNetworks("h1"))
        assert answer == messages.DhcpNetworks("h1", ("n1",))
        with pytest.raises(interface.RemoteError) as caught:
            await bus.call(messages.CONTROLLER_TOPIC, messages.GetDhcpNetworks("broken"))
        assert caught.value.error_type == "LookupError"
        assert "no such host" in caught.value.message

    run(scenario)


def test_call_waits_for_a_server_then_times_out() -> None:
    async def scenario() -> None:
        bus = memory.Bus()
        with pytest.raises(interface.CallTimeout):
            await bus.call("nobody", messages.GetDhcpNetworks("h"), timeout=0.05)
        pending = asyncio.create_task(bus.call("late", messages.GetDhcpNetworks("h"), timeout=2))
        await asyncio.sleep(0.05)
        assert not pending.done()
        bus.serve("late", _echo_host)
        assert (await pending).network_ids == ("n1",)

    run(scenario)


def test_a_slow_server_times_out() -> None:
    async def slow(request: codec.Record) -> codec.Record:
        await asyncio.sleep(5)
        return request

    async def scenario() -> None:
        bus = memory.Bus()
        bus.serve("slow", slow)
        with pytest.raises(interface.CallTimeout):
            await bus.call("slow", messages.GetDhcpNetworks("h"), timeout=0.05)

    run(scenario)


def test_servers_of_a_topic_share_the_requests() -> None:
    async def scenario() -> None:
        bus = memory.Bus()
        seen: list[str] = []

        def server(name: str) -> interface.Handler:
            async def handle(request: codec.Record) -> codec.Record:
                seen.append(name)
                return messages.DhcpNetworks("h")

            return handle

        first = bus.serve("c", server("a"))
        bus.serve("c", server("b"))
        for _ in range(4):
            await bus.call("c", messages.GetDhcpNetworks("h"))
        assert sorted(seen) == ["a", "a", "b", "b"]
        first.close()
        await bus.call("c", messages.GetDhcpNetworks("h"))
        assert seen[-1] == "b"

    run(scenario)


# --- the work queue -------------------------------------------------------------------------


def test_queue_dedupes_and_never_runs_a_key_twice_at_once() -> None:
    async def scenario() -> None:
        runs: list[str] = []
        running: set[str] = set()
        release = asyncio.Event()

        async def reconcile(key: str) -> None:
            assert key not in running, "one worker per key"
            running.add(key)
            runs.append(key)
            if key == "slow":
                await release.wait()
            running.discard(key)

        queue: runtime.WorkQueue[str] = runtime.WorkQueue("t", reconcile, workers=4)
        for key in ("a", "a", "b", "a"):
            queue.add(key)
        queue.start()
        await queue.wait_idle()
        assert sorted(runs) == ["a", "b"]
        # A key added while it runs runs once more afterwards, never concurrently.
        queue.add("slow")
        await asyncio.sleep(0.01)
        queue.add("slow")
        queue.add("slow")
        release.set()
        await queue.wait_idle()
        assert runs.count("slow") == 2
        await queue.stop()

    run(scenario)


def test_queue_backs_off_per_key_and_resets_on_success() -> None:
    async def scenario() -> None:
        attempts: dict[str, int] = {"flaky": 0, "fine": 0}

        async def reconcile(key: str) -> None:
            attempts[key] += 1
            if key == "flaky" and attempts[key] < 3:
                raise RuntimeError("not yet")

        queue: runtime.WorkQueue[str] = runtime.WorkQueue(
            "t", reconcile, backoff_initial=0.02, backoff_max=0.05
        )
        queue.start()
        queue.add("flaky")
        queue.add("fine")
        await queue.wait_idle()
        assert attempts == {"flaky": 3, "fine": 1}
        assert queue.failures == {}
        assert queue.backoff(1) <= 0.02 and queue.backoff(10) <= 0.05
        await queue.stop()

    run(scenario)


def test_every_keeps_going_after_a_failure() -> None:
    async def scenario() -> None:
        calls = 0

        async def action() -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("first tick fails")

        task = asyncio.create_task(runtime.every(0.01, action, "tick", jitter=0))
        await asyncio.sleep(0.1)
        task.cancel()
        assert calls >= 3

    run(scenario)
