"""The compute agent against the fake driver, on the real memory bus, with a tiny
controller that answers the compute RPCs from a dict (no database)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from stackbox.agent.compute import fake, service
from stackbox.bus import codec, compute_messages, compute_specs, interface, memory, messages, specs
from stackbox.compute import states

HOST = "h1"
FLAVOR = compute_specs.FlavorSpec("42", "m1.nano", vcpus=1, memory_mb=64, root_gb=1)
IMAGE = compute_specs.ImageSpec("img-1", "cirros", status="active", disk_format="qcow2")


def run(test: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(test(), 20))


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.01)


class TinyController:
    """Answers GetServersForHost, ReportServerStatus, ComputeHeartbeat and
    GetSnapshotTarget as the real controller would, from ``servers``."""

    def __init__(self, bus: memory.Bus) -> None:
        self.bus = bus
        self.servers: dict[str, compute_specs.ServerSpec] = {}
        self.reports: list[compute_specs.ServerStatus] = []
        self.beats: list[compute_messages.ComputeHeartbeat] = []
        self.refuse_reports = 0
        self.service = bus.serve(messages.CONTROLLER_TOPIC, self.handle)

    async def handle(self, request: codec.Record) -> codec.Record:
        match request:
            case compute_messages.GetServersForHost(host=host, server_ids=ids):
                found = [s for s in self.servers.values() if not ids or s.id in ids]
                return compute_messages.ServersForHost(host, tuple(found))
            case compute_messages.ReportServerStatus(servers=items):
                if self.refuse_reports:
                    self.refuse_reports -= 1
                    raise RuntimeError("the database is away")
                return self._record(items)
            case compute_messages.ComputeHeartbeat():
                self.beats.append(request)
                status = messages.AGENT_NEW if len(self.beats) == 1 else messages.AGENT_ALIVE
                return compute_messages.ComputeHeartbeatAck("service-1", status)
            case compute_messages.GetSnapshotTarget(image_id=image_id):
                return compute_messages.SnapshotTarget(
                    image_id,
                    url=f"http://image.test/v2/images/{image_id}/file",
                    token="a-token",
                    disk_format=request.disk_format,
                    container_format=request.container_format,
                )
        raise ValueError(type(request).__name__)

    def _record(
        self, items: tuple[compute_specs.ServerStatus, ...]
    ) -> compute_messages.ServerStatusAck:
        updated, ignored, unknown = [], [], []
        for item in items:
            self.reports.append(item)
            spec = self.servers.get(item.id)
            if spec is None:
                unknown.append(item.id)
            elif item.observed_generation != spec.generation or item.task != spec.task_state:
                ignored.append(item.id)
            else:
                updated.append(item.id)
                if item.ok and item.task == states.DELETING:
                    del self.servers[item.id]
                    continue
                if spec.vm_state == states.BUILDING:
                    vm_state = states.ACTIVE if item.ok else states.ERROR
                else:
                    outcome = states.DONE.get(item.task, states.DONE[None])
                    vm_state = (outcome.vm_state or spec.vm_state) if item.ok else spec.vm_state
                self.servers[item.id] = dataclasses.replace(
                    spec,
                    vm_state=vm_state,
                    task_state=None,
                    power_state=item.power_state,
                    observed_generation=item.observed_generation,
                )
        return compute_messages.ServerStatusAck(tuple(updated), tuple(ignored), tuple(unknown))

    async def change(self, server_id: str, **fields: Any) -> None:
        """An API action: a new generation with ``fields``, and a nudge to the host."""
        spec = self.servers[server_id]
        self.servers[server_id] = dataclasses.replace(
            spec, generation=spec.generation + 1, **fields
        )
        await self.nudge(server_id)

    async def nudge(self, server_id: str) -> None:
        await self.bus.publish(
            compute_messages.host_topic(HOST),
            messages.Nudge(compute_messages.NUDGE_KIND, server_id),
        )

    def reports_for(self, server_id: str) -> list[compute_specs.ServerStatus]:
        return [r for r in self.reports if r.id == server_id]


def server(server_id: str, **fields: Any) -> compute_specs.ServerSpec:
    values: dict[str, Any] = {
        "generation": 1,
        "vm_state": states.BUILDING,
        "task_state": states.SCHEDULING,
        "name": f"vm-{server_id}",
        "hostname": f"vm-{server_id}",
        "flavor": FLAVOR,
        "image": IMAGE,
        "ports": (
            compute_specs.VifSpec(
                "port-1",
                "net-1",
                "fa:16:3e:00:00:01",
                fixed_ips=(specs.FixedIP("sub-1", "10.0.0.5"),),
            ),
        ),
    }
    values.update(fields)
    return compute_specs.ServerSpec(server_id, **values)


@dataclasses.dataclass
class Node:
    bus: memory.Bus
    controller: TinyController
    driver: fake.FakeDriver
    agent: service.ComputeAgent
    uploads: list[tuple[compute_messages.SnapshotTarget, bytes]]

    def new_agent(self, **options: Any) -> service.ComputeAgent:
        return make_agent(
            self.bus, self.driver, self.agent.reconciler.work_dir, self.uploads, **options
        )


def make_agent(
    bus: memory.Bus,
    driver: fake.FakeDriver,
    work_dir: Path,
    uploads: list[tuple[compute_messages.SnapshotTarget, bytes]],
    **options: Any,
) -> service.ComputeAgent:
    async def upload(target: compute_messages.SnapshotTarget, path: Path) -> None:
        uploads.append((target, path.read_bytes()))

    options.setdefault("report_interval", 0.2)
    options.setdefault("resync_interval", 30.0)
    return service.ComputeAgent(
        bus, HOST, driver, rpc_timeout=2.0, work_dir=work_dir, upload=upload, **options
    )


async def start_node(tmp: Path, *servers: compute_specs.ServerSpec, **options: Any) -> Node:
    bus = memory.Bus()
    controller = TinyController(bus)
    for spec in servers:
        controller.servers[spec.id] = spec
    driver = fake.FakeDriver(HOST, vcpus=8, memory_mb=4096, local_gb=100)
    uploads: list[tuple[compute_messages.SnapshotTarget, bytes]] = []
    agent = make_agent(bus, driver, tmp, uploads, **options)
    await agent.start()
    return Node(bus, controller, driver, agent, uploads)


# --- building ------------------------------------------------------------------------------


def test_a_build_is_spawned_and_reported_once(tmp_path: Path) -> None:
    async def test() -> None:
        node = await start_node(tmp_path, server("s1"))
        await eventually(lambda: node.controller.servers["s1"].vm_state == states.ACTIVE)
        [report] = node.controller.reports_for("s1")
        assert report.ok and report.task == states.SCHEDULING
        assert report.observed_generation == 1 and report.power_state == compute_specs.RUNNING
        assert node.driver.instances["s1"].power_state == compute_specs.RUNNING
        # Nudges and resyncs of a converged generation change nothing and report nothing.
        await node.controller.nudge("s1")
        await node.agent.resync()
        await asyncio.sleep(0.2)
        await node.agent.wait_idle()
        assert len(node.controller.reports_for("s1")) == 1
        assert [c for c in node.driver.calls if c[0] == "spawn"] == [("spawn", "s1")]
        await node.agent.stop()

    run(test)


def test_the_first_heartbeat_carries_the_host_resources(tmp_path: Path) -> None:
    async def test() -> None:
        node = await start_node(tmp_path)
        await eventually(lambda: len(node.controller.beats) >= 2)
        first, second = node.controller.beats[:2]
        assert first.start_flag and not second.start_flag
        assert first.hypervisor is not None
        assert (first.hypervisor.vcpus, first.hypervisor.memory_mb) == (8, 4096)
        assert first.hypervisor.hypervisor_type == "fake"
        assert node.agent.service_id == "service-1"
        await node.agent.stop()

    run(test)


def test_a_failed_spawn_leaves_nothing_and_reports_a_fault(tmp_path: Path) -> None:
    async def test() -> None:
        bus = memory.Bus()
        controller = TinyController(bus)
        controller.servers["s1"] = server("s1")
        driver = fake.FakeDriver(HOST)
        driver.fail_next("spawn", "No space left on the fake disk")
        agent = make_agent(bus, driver, tmp_path, [])
        await agent.start()
        await eventually(lambda: controller.servers["s1"].vm_state == states.ERROR)
        [report] = controller.reports_for("s1")
        assert not report.ok
        assert (
            report.fault_message == "Build of instance s1 aborted: No space left on the fake disk"
        )
        assert "DriverError" in report.fault_details
        assert report.power_state == compute_specs.NOSTATE
        assert "s1" not in driver.instances
        await agent.stop()

    run(test)


def test_a_cancelled_spawn_cleans_up(tmp_path: Path) -> None:
    async def test() -> None:
        driver = fake.FakeDriver(HOST, spawn_delay=5)
        task = asyncio.create_task(driver.spawn(server("s1")))
        await eventually(lambda: "s1" in driver.instances)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert driver.instances == {}

    run(test)


# --- tasks ---------------------------------------------------------------------------------


def test_each_generation_carries_out_its_task(tmp_path: Path) -> None:
    async def test() -> None:
        node = await start_node(tmp_path, server("s1"))
        await eventually(lambda: node.controller.servers["s1"].vm_state == states.ACTIVE)
        steps = [
            (states.POWERING_OFF, states.STOPPED, compute_specs.SHUTDOWN),
            (states.POWERING_ON, states.ACTIVE, compute_specs.RUNNING),
            (states.PAUSING, states.PAUSED, compute_specs.PAUSED),
            (states.UNPAUSING, states.ACTIVE, compute_specs.RUNNING),
            (states.SUSPENDING, states.SUSPENDED, compute_specs.SUSPENDED),
            (states.RESUMING, states.ACTIVE, compute_specs.RUNNING),
            (states.REBOOTING_HARD, states.ACTIVE, compute_specs.RUNNING),
            (states.RESCUING, states.RESCUED, compute_specs.RUNNING),
            (states.UNRESCUING, states.ACTIVE, compute_specs.RUNNING),
        ]
        for task, vm_state, power in steps:
            generation = node.controller.servers["s1"].generation + 1
            await node.controller.change("s1", task_state=task)

            def observed(wanted: int = generation) -> bool:
                return node.controller.servers["s1"].observed_generation == wanted

            await eventually(observed)
            now = node.controller.servers["s1"]
            assert (task, now.vm_state, now.power_state) == (task, vm_state, power)
            assert node.driver.instances["s1"].power_state == power
        console = await node.driver.get_console_output("s1")
        assert "reboot: Power down" in console and console.endswith("vm-s1 login: ")
        await node.agent.stop()

    run(test)


def test_a_resize_gives_the_guest_the_new_flavor(tmp_path: Path) -> None:
    async def test() -> None:
        node = await start_node(tmp_path, server("s1"))
        await eventually(lambda: node.controller.servers["s1"].vm_state == states.ACTIVE)
        bigger = dataclasses.replace(FLAVOR, flavorid="84", name="m1.micro", memory_mb=128)
        await node.controller.change(
            "s1", task_state=states.RESIZE_PREP, new_flavor=bigger, old_flavor=FLAVOR
        )
        await eventually(lambda: node.controller.servers["s1"].vm_state == states.RESIZED)
        assert node.driver.instances["s1"].flavor == bigger
        # The API puts the state the resize started from back as the revert starts.
        await node.controller.change(
            "s1", task_state=states.RESIZE_REVERTING, vm_state=states.ACTIVE
        )
        await eventually(lambda: node.controller.servers["s1"].task_state is None)
        assert node.controller.servers["s1"].vm_state == states.ACTIVE
        assert node.driver.instances["s1"].flavor == FLAVOR
        await node.agent.stop()

    run(test)


def test_a_failed_task_reports_its_fault_and_keeps_the_guest(tmp_path: Path) -> None:
    async def test() -> None:
        node = await start_node(tmp_path, server("s1"))
        await eventually(lambda: node.controller.servers["s1"].vm_state == states.ACTIVE)
        node.driver.fail_next("reboot", "the guest did not answer")
        await node.controller.change("s1", task_state=states.REBOOTING)
        await eventually(lambda: len(node.controller.reports_for("s1")) == 2)
        report = node.controller.reports_for("s1")[-1]
        assert not report.ok and report.task == states.REBOOTING
        assert report.fault_message == "the guest did not answer"
        assert node.controller.servers["s1"].task_state is None
        assert "s1" in node.driver.instances
        await node.agent.stop()

    run(test)


def test_a_task_the_agent_does_not_know_fails_cleanly(tmp_path: Path) -> None:
    async def test() -> None:
        node = await start_node(tmp_path, server("s1"))
        await eventually(lambda: node.controller.servers["s1"].vm_state == states.ACTIVE)
        await node.controller.change("s1", task_state="migrating")
        await eventually(lambda: len(node.controller.reports_for("s1")) == 2)
        report = node.controller.reports_for("s1")[-1]
        assert not report.ok and "cannot carry out task migrating" in report.fault_message
        await node.agent.stop()

    run(test)


def test_every_api_task_is_one_the_agent_carries_out() -> None:
    from stackbox.agent.compute import reconciler

    async def no_call(request: codec.Record) -> Any:
        raise AssertionError(request)

    agent = reconciler.Reconciler(HOST, fake.FakeDriver(HOST), no_call, work_dir=Path())
    handled = agent.handled_tasks
    asked = {a.task for a in states.ACTIONS.values() if a.task is not None}
    assert asked <= handled, asked - handled


def test_a_snapshot_is_written_and_uploaded(tmp_path: Path) -> None:
    async def test() -> None:
        node = await start_node(tmp_path, server("s1"))
        await eventually(lambda: node.controller.servers["s1"].vm_state == states.ACTIVE)
        await node.controller.change(
            "s1",
            task_state=states.IMAGE_SNAPSHOT,
            snapshots=(compute_specs.SnapshotSpec("snap-1", "backup"),),
        )
        await eventually(lambda: node.controller.servers["s1"].task_state is None)
        [(target, data)] = node.uploads
        assert target.url.endswith("/snap-1/file") and target.disk_format == "qcow2"
        assert data[:4] == b"QFI\xfb"
        assert list(tmp_path.iterdir()) == []  # the local file is gone after the upload
        assert node.controller.reports_for("s1")[-1].ok
        await node.agent.stop()

    run(test)


# --- deleting and what is not wanted -------------------------------------------------------


def test_a_delete_destroys_the_guest(tmp_path: Path) -> None:
    async def test() -> None:
        node = await start_node(tmp_path, server("s1"))
        await eventually(lambda: node.controller.servers["s1"].vm_state == states.ACTIVE)
        await node.controller.change("s1", task_state=states.DELETING)
        await eventually(lambda: "s1" not in node.controller.servers)
        assert node.controller.reports_for("s1")[-1].task == states.DELETING
        assert "s1" not in node.driver.instances
        assert "s1" not in node.agent.reconciler.converged
        await node.agent.stop()

    run(test)


def test_guests_nobody_wants_are_destroyed(tmp_path: Path) -> None:
    async def test() -> None:
        bus = memory.Bus()
        controller = TinyController(bus)
        driver = fake.FakeDriver(HOST)
        await driver.spawn(server("ghost"))
        agent = make_agent(bus, driver, tmp_path, [])
        await agent.start()  # the start resync finds it
        await eventually(lambda: "ghost" not in driver.instances)
        assert controller.reports == []
        await agent.stop()

    run(test)


def test_a_server_moved_elsewhere_is_destroyed_here(tmp_path: Path) -> None:
    async def test() -> None:
        node = await start_node(tmp_path, server("s1"))
        await eventually(lambda: node.controller.servers["s1"].vm_state == states.ACTIVE)
        del node.controller.servers["s1"]  # now on another host: not in this host's answer
        await node.controller.nudge("s1")
        await eventually(lambda: "s1" not in node.driver.instances)
        await node.agent.stop()

    run(test)


# --- restarts ------------------------------------------------------------------------------


def test_a_new_agent_trusts_the_observed_generation(tmp_path: Path) -> None:
    async def test() -> None:
        node = await start_node(tmp_path, server("s1"))
        await eventually(lambda: node.controller.servers["s1"].vm_state == states.ACTIVE)
        await node.agent.stop()
        calls = len(node.driver.calls)
        agent = node.new_agent()
        await agent.start()
        await eventually(lambda: len(node.controller.beats) >= 2)
        await asyncio.sleep(0.1)
        await agent.wait_idle()
        assert node.driver.calls[calls:] == []  # nothing redone
        assert len(node.controller.reports_for("s1")) == 1
        await agent.stop()

    run(test)


def test_a_restarted_agent_converges_what_it_missed(tmp_path: Path) -> None:
    async def test() -> None:
        node = await start_node(tmp_path, server("s1"), server("s2"))
        await eventually(
            lambda: all(s.vm_state == states.ACTIVE for s in node.controller.servers.values())
        )
        await node.agent.stop()
        # While it is away: a stop (its nudge is lost), and a new build.
        await node.controller.change("s1", task_state=states.POWERING_OFF)
        node.controller.servers["s3"] = server("s3")
        agent = node.new_agent()
        await agent.start()
        await eventually(lambda: node.controller.servers["s1"].vm_state == states.STOPPED)
        await eventually(lambda: node.controller.servers["s3"].vm_state == states.ACTIVE)
        assert node.driver.instances["s1"].power_state == compute_specs.SHUTDOWN
        await agent.stop()

    run(test)


def test_a_build_cut_off_midway_is_done_again(tmp_path: Path) -> None:
    async def test() -> None:
        bus = memory.Bus()
        controller = TinyController(bus)
        controller.servers["s1"] = server("s1")
        driver = fake.FakeDriver(HOST, spawn_delay=0.5)
        agent = make_agent(bus, driver, tmp_path, [])
        await agent.start()
        await eventually(lambda: "s1" in driver.instances)
        await agent.stop()  # mid-spawn: the cancelled spawn leaves nothing
        assert driver.instances == {} and controller.reports == []
        driver.spawn_delay = 0
        agent = make_agent(bus, driver, tmp_path, [])
        await agent.start()
        await eventually(lambda: controller.servers["s1"].vm_state == states.ACTIVE)
        await agent.stop()

    run(test)


def test_a_lost_guest_is_made_again_in_its_power_state(tmp_path: Path) -> None:
    async def test() -> None:
        node = await start_node(tmp_path, server("s1"))
        await eventually(lambda: node.controller.servers["s1"].vm_state == states.ACTIVE)
        await node.controller.change("s1", task_state=states.POWERING_OFF)
        await eventually(lambda: node.controller.servers["s1"].vm_state == states.STOPPED)
        await node.agent.stop()
        node.driver.instances.clear()  # the host rebooted (or the fake's process restarted)
        agent = node.new_agent()
        await agent.start()
        await eventually(lambda: "s1" in node.driver.instances)
        await eventually(lambda: node.driver.instances["s1"].power_state == compute_specs.SHUTDOWN)
        await agent.wait_idle()
        assert len(node.controller.reports_for("s1")) == 2  # no report: the power is as recorded
        await agent.stop()

    run(test)


def test_a_report_that_did_not_get_through_is_sent_again_without_redoing(tmp_path: Path) -> None:
    async def test() -> None:
        bus = memory.Bus()
        controller = TinyController(bus)
        controller.servers["s1"] = server("s1")
        controller.refuse_reports = 2
        driver = fake.FakeDriver(HOST)
        agent = make_agent(bus, driver, tmp_path, [])
        await agent.start()
        await eventually(lambda: controller.servers["s1"].vm_state == states.ACTIVE)
        assert [c for c in driver.calls if c[0] == "spawn"] == [("spawn", "s1")]
        await agent.stop()

    run(test)


def test_a_guest_that_changed_power_by_itself_is_reported(tmp_path: Path) -> None:
    async def test() -> None:
        node = await start_node(tmp_path, server("s1"))
        await eventually(lambda: node.controller.servers["s1"].vm_state == states.ACTIVE)
        node.driver.instances["s1"].power_state = compute_specs.CRASHED
        await node.controller.nudge("s1")
        await eventually(lambda: node.controller.servers["s1"].power_state == compute_specs.CRASHED)
        report = node.controller.reports_for("s1")[-1]
        assert report.ok and report.task is None
        assert node.controller.servers["s1"].vm_state == states.ACTIVE
        await node.agent.stop()

    run(test)


# --- console output ------------------------------------------------------------------------


def test_console_output_is_served_for_the_host(tmp_path: Path) -> None:
    async def test() -> None:
        node = await start_node(tmp_path, server("s1"))
        await eventually(lambda: node.controller.servers["s1"].vm_state == states.ACTIVE)
        topic = compute_messages.rpc_topic(HOST)
        three = await node.bus.call(topic, compute_messages.GetConsoleOutput("s1", 3), 2)
        assert isinstance(three, compute_messages.ConsoleOutput)
        assert len(three.output.split("\n")) == 3
        assert three.output.endswith("vm-s1 login: ")
        whole = await node.bus.call(topic, compute_messages.GetConsoleOutput("s1"), 2)
        assert isinstance(whole, compute_messages.ConsoleOutput)
        assert len(whole.output.split("\n")) > 3 and "10.0.0.5" in whole.output
        with pytest.raises(interface.RemoteError) as caught:
            await node.bus.call(topic, compute_messages.GetConsoleOutput("nope"), 2)
        assert caught.value.error_type == "InstanceNotFound"
        await node.agent.stop()
        with pytest.raises(interface.CallTimeout):
            await node.bus.call(topic, compute_messages.GetConsoleOutput("s1"), 0.2)

    run(test)


def test_tail_cuts_lines_as_nova_does() -> None:
    assert service.tail("a\nb\nc", 2) == "b\nc"
    assert service.tail("a\nb\nc", None) == "a\nb\nc"
    assert service.tail("a\nb\nc", 0) == ""
    assert service.tail("a\nb\nc", 10) == "a\nb\nc"


def test_the_fake_snapshot_is_a_valid_qcow2(tmp_path: Path) -> None:
    from oslo_utils.imageutils import format_inspector

    path = tmp_path / "disk"
    path.write_bytes(fake.empty_qcow2(2 << 30))
    inspector = format_inspector.detect_file_format(str(path))
    assert inspector is not None
    assert str(inspector) == "qcow2" and inspector.virtual_size == 2 << 30
    inspector.safety_check()
