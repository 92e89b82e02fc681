"""The compute agent and its contract with the controller, for real: outbox nudge ->
relay -> memory bus -> compute agent (fake driver) -> RPC -> status intake -> database.

The cloud runs with short compute timers and a known host name, and keeps a handle
on its plane so a test can reach the fake driver's knobs and restart the agent.

Servers are made and acted on through the compute API; the database is read to see
what the API does not show (claims, action events, observed generations). Rows are
written by hand only where no API can make them: a server created long ago (build
timeouts) and a snapshot image that declares a format the fake does not write.
The acceptance test (20 parallel boots through a restart) is test_compute_restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import config, rest
from stackbox.agent.compute import fake
from stackbox.agent.compute import service as compute_agent
from stackbox.compute import agent_calls, build_timeouts, hosts, models, notify, states
from stackbox.controller import compute_rpc
from stackbox.db import session as db_session
from stackbox.web import assembly
from tests import cloudfixture

HOST = "node-c"
T = TypeVar("T")
FLAVOR = {
    "id": "42",
    "name": "m1.nano",
    "memory_mb": 64,
    "vcpus": 1,
    "root_gb": 1,
    "ephemeral_gb": 0,
    "swap": 0,
    "rxtx_factor": 1.0,
    "extra_specs": {},
}


class Running:
    def __init__(
        self,
        cloud: cloudfixture.Cloud,
        plane: assembly.NetworkPlane,
        database: db_session.Database,
        settings: config.Settings,
    ) -> None:
        self.cloud = cloud
        self.plane = plane
        self.database = database
        self.settings = settings

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the cloud's event loop (where the bus and agents live)."""
        assert self.plane.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.plane.loop).result(timeout=30)

    def db(self, work: Callable[[Session], T], write: bool = False) -> T:
        return self.database.run(work, write=write)

    @property
    def agent(self) -> compute_agent.ComputeAgent:
        return self.plane.compute_agents[0]

    @property
    def driver(self) -> fake.FakeDriver:
        driver = self.agent.driver
        assert isinstance(driver, fake.FakeDriver)
        return driver

    def restart_agent(self) -> compute_agent.ComputeAgent:
        """Stop this node's compute agent and start a new one on the same driver (the
        guests outlive the agent, as with nova-compute)."""
        old = self.agent
        self.run(old.stop())
        new = compute_agent.ComputeAgent(
            self.plane.bus,
            HOST,
            old.driver,
            report_interval=old.report_interval,
            resync_interval=old.resync_interval,
            work_dir=old.reconciler.work_dir,
        )
        self.plane.compute_agents[0] = new
        self.run(new.start())
        return new


def _settings(tmp: Path, port: int) -> config.Settings:
    return config.Settings(
        state_dir=tmp,
        port=port,
        admin_password=cloudfixture.ADMIN_PASSWORD,
        hostname=HOST,
        log_level="warning",
        identity=config.IdentitySettings(bcrypt_rounds=4),
        network=config.NetworkSettings(
            agent_report_interval=0.3, agent_resync_interval=5.0, create_defaults=False
        ),
        compute=config.ComputeSettings(
            agent_report_interval=0.3,
            agent_resync_interval=1.0,
            service_down_time=5,
            # DevStack's flavors (m1.nano is 42); the image is the test's own.
            create_defaults=True,
        ),
    )


@contextlib.contextmanager
def running_cloud(settings: config.Settings) -> Iterator[Running]:
    with cloudfixture.serve(settings) as (cloud, database):
        assert cloud.plane is not None
        yield Running(cloud, cloud.plane, database, settings)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = Path(tmp_path_factory.mktemp("compute-agent"))
    with running_cloud(_settings(tmp, cloudfixture.free_port())) as running:
        yield running


wait_for = cloudfixture.wait_for


# --- the front doors a server create will use ----------------------------------------------


@pytest.fixture(scope="module")
def admin_token(env: Running) -> str:
    return env.cloud.token()


@pytest.fixture(scope="module")
def who(env: Running, admin_token: str) -> tuple[str, str]:
    """The admin's (user id, project id)."""
    with env.cloud.http() as http:
        response = http.get(
            "/v3/auth/tokens", headers={"X-Auth-Token": admin_token, "X-Subject-Token": admin_token}
        )
    token = response.json()["token"]
    return token["user"]["id"], token["project"]["id"]


@pytest.fixture(scope="module")
def net(env: Running, admin_token: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=env.cloud.base_url + "/networking/v2.0",
        headers={"X-Auth-Token": admin_token},
        timeout=30,
    ) as http:
        yield http


@pytest.fixture(scope="module")
def network_id(net: httpx.Client) -> str:
    response = net.post("/networks", json={"network": {"name": "compute-agent-net"}})
    assert response.status_code == 201, response.text
    found = str(response.json()["network"]["id"])
    response = net.post(
        "/subnets", json={"subnet": {"network_id": found, "cidr": "10.9.0.0/24", "ip_version": 4}}
    )
    assert response.status_code == 201, response.text
    return found


@pytest.fixture(scope="module")
def image_id(env: Running, admin_token: str) -> str:
    with httpx.Client(
        base_url=env.cloud.base_url + "/image/v2", headers={"X-Auth-Token": admin_token}
    ) as http:
        response = http.post(
            "/images", json={"name": "boot-me", "disk_format": "raw", "container_format": "bare"}
        )
        assert response.status_code == 201, response.text
        found = str(response.json()["id"])
        response = http.put(
            f"/images/{found}/file",
            content=b"\0" * 4096,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert response.status_code == 204, response.text
    return found


@pytest.fixture(scope="module")
def node_id(env: Running) -> int:
    """The hypervisor row of this host, once its agent has reported."""

    def find(session: Session) -> int | None:
        node = session.scalars(
            select(models.ComputeNode).where(models.ComputeNode.hypervisor_hostname == HOST)
        ).first()
        return node.id if node is not None else None

    return wait_for(lambda: env.db(find), what="the first heartbeat")


@pytest.fixture(scope="module")
def api(env: Running, admin_token: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=env.cloud.base_url + "/compute/v2.1",
        headers={"X-Auth-Token": admin_token, "OpenStack-API-Version": "compute 2.96"},
        timeout=30,
    ) as http:
        yield http


def boot(api: httpx.Client, image_id: str, networks: list[dict[str, str]], name: str = "vm") -> str:
    body = {"server": {"name": name, "imageRef": image_id, "flavorRef": "42", "networks": networks}}
    response = api.post("/servers", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["server"]["id"])


def show(api: httpx.Client, server_id: str) -> dict[str, Any]:
    response = api.get(f"/servers/{server_id}")
    assert response.status_code == 200, response.text
    return dict(response.json()["server"])


def wait_status(api: httpx.Client, server_id: str, status: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        body = show(api, server_id)
        return body if body["status"] == status and body["OS-EXT-STS:task_state"] is None else None

    return wait_for(reached, what=f"{server_id} {status}")


def act(api: httpx.Client, server_id: str, body: dict[str, Any]) -> httpx.Response:
    response = api.post(f"/servers/{server_id}/action", json=body)
    assert response.status_code == 202, response.text
    return response


def make_port(net: httpx.Client, network_id: str, **attrs: Any) -> dict[str, Any]:
    response = net.post("/ports", json={"port": {"network_id": network_id, **attrs}})
    assert response.status_code == 201, response.text
    return dict(response.json()["port"])


def insert_server(
    env: Running,
    who: tuple[str, str],
    *,
    host: str | None,
    created_at: datetime.datetime | None = None,
) -> str:
    """A server in BUILD with its create action, written as the create API writes one:
    by hand only because no API makes a server created in the past."""
    server_id = str(uuid.uuid4())
    user_id, project_id = who

    def write(session: Session) -> None:
        moment = created_at or datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        session.add(
            models.Server(
                id=server_id,
                project_id=project_id,
                user_id=user_id,
                name=f"vm-{server_id[:8]}",
                flavor=dict(FLAVOR),
                vm_state=states.BUILDING,
                task_state=states.SCHEDULING,
                host=host,
                node=host,
                generation=1,
                created_at=moment,
                updated_at=moment,
            )
        )
        action = models.InstanceAction(
            server_id=server_id,
            action="create",
            request_id=f"req-{uuid.uuid4()}",
            user_id=user_id,
            project_id=project_id,
            start_time=moment,
            updated_at=moment,
        )
        session.add(action)
        session.flush()
        session.add(
            models.InstanceActionEvent(
                action_id=action.id,
                event="compute__do_build_and_run_instance",
                host=host,
                start_time=moment,
            )
        )

    env.db(write, write=True)
    return server_id


def start_task(
    env: Running, server_id: str, task: str, action: str, who: tuple[str, str] | None = None
) -> None:
    """What an action handler does (a new generation with a task, its action, a nudge),
    for the one snapshot the API cannot ask for (see test_a_refused_upload...)."""

    def write(session: Session) -> None:
        server = session.get(models.Server, server_id)
        assert server is not None
        server.task_state = task
        server.generation += 1
        session.add(
            models.InstanceAction(
                server_id=server_id,
                action=action,
                request_id=f"req-{uuid.uuid4()}",
                user_id=who[0] if who else server.user_id,
                project_id=who[1] if who else server.project_id,
            )
        )
        notify.server(session, server_id, server.host)

    env.db(write, write=True)


def server_row(env: Running, server_id: str) -> models.Server:
    found = env.db(lambda s: s.get(models.Server, server_id))
    assert found is not None
    return found


def settled(env: Running, server_id: str) -> models.Server | None:
    """The server once no task is pending and its generation was observed."""
    row = server_row(env, server_id)
    if row.task_state is None and row.observed_generation == row.generation:
        return row
    return None


def faults(env: Running, server_id: str) -> list[str]:
    return env.db(
        lambda s: [
            f.message
            for f in s.scalars(
                select(models.ServerFault)
                .where(models.ServerFault.server_id == server_id)
                .order_by(models.ServerFault.id)
            )
        ]
    )


def claims(env: Running, server_id: str) -> int:
    return len(
        env.db(
            lambda s: list(
                s.scalars(select(models.Allocation).where(models.Allocation.server_id == server_id))
            )
        )
    )


# --- hosts ---------------------------------------------------------------------------------


def test_the_host_registers_with_the_fake_resources(env: Running, node_id: int) -> None:
    def read(session: Session) -> tuple[models.Service, models.ComputeNode, bool]:
        service = hosts.find_service(session, HOST)
        node = session.get(models.ComputeNode, node_id)
        assert service is not None and node is not None
        return service, node, hosts.is_up(service)

    service, node, up = env.db(read)
    compute = env.settings.compute
    assert (service.binary, service.topic, service.disabled) == ("nova-compute", "compute", False)
    assert up and service.report_interval == compute.agent_report_interval
    assert (node.vcpus, node.memory_mb, node.local_gb) == (
        compute.fake_vcpus,
        compute.fake_memory_mb,
        compute.fake_local_gb,
    )
    assert node.hypervisor_type == "fake" and node.service_id == service.id
    assert node.cpu_allocation_ratio == compute.cpu_allocation_ratio
    assert node.supported_instances == [["x86_64", "fake", "hvm"]]
    assert env.agent.service_id == service.uuid
    # Heartbeats keep it fresh.
    first = service.last_seen_up
    assert first is not None

    def seen(session: Session) -> datetime.datetime | None:
        found = hosts.find_service(session, HOST)
        return found.last_seen_up if found is not None else None

    wait_for(lambda: (env.db(seen) or first) > first, what="a later heartbeat")


# --- building ------------------------------------------------------------------------------


def test_a_server_goes_active(
    env: Running, api: httpx.Client, node_id: int, image_id: str, network_id: str
) -> None:
    server_id = boot(api, image_id, [{"uuid": network_id}])
    body = wait_status(api, server_id, "ACTIVE")
    assert body["OS-EXT-STS:power_state"] == states.RUNNING
    assert body["OS-EXT-SRV-ATTR:host"] == HOST and body["OS-SRV-USG:launched_at"]
    row = server_row(env, server_id)
    assert (row.observed_generation, row.generation) == (1, 1)
    instance = env.driver.instances[server_id]
    assert instance.image_id == image_id and [p.network_id for p in instance.ports] == [network_id]
    assert claims(env, server_id) == 1

    def events(session: Session) -> list[models.InstanceActionEvent]:
        return list(
            session.scalars(
                select(models.InstanceActionEvent)
                .join(models.InstanceAction)
                .where(
                    models.InstanceAction.server_id == server_id,
                    models.InstanceActionEvent.event == "compute__do_build_and_run_instance",
                )
            )
        )

    [event] = env.db(events)
    assert (event.result, event.host) == ("Success", HOST) and event.finish_time is not None


def test_console_output_comes_from_the_agent(
    api: httpx.Client, image_id: str, network_id: str
) -> None:
    server_id = boot(api, image_id, [{"uuid": network_id}])
    wait_status(api, server_id, "ACTIVE")
    response = api.post(f"/servers/{server_id}/action", json={"os-getConsoleOutput": {"length": 3}})
    assert response.status_code == 200, response.text
    three = response.json()["output"]
    assert len(three.split("\n")) == 3 and three.endswith("login: ")
    assert len(agent_calls.console_output(HOST, server_id).split("\n")) > 3
    with pytest.raises(rest.NotFound) as missing:
        agent_calls.console_output(HOST, str(uuid.uuid4()))
    assert missing.value.message == "Guest does not have a console available."
    with pytest.raises(rest.Conflict):
        agent_calls.console_output("no-such-host", server_id, timeout=0.3)
    with pytest.raises(rest.Conflict):
        agent_calls.console_output(None, server_id)


def test_a_failed_spawn_is_error_with_a_fault(
    env: Running, api: httpx.Client, image_id: str, network_id: str
) -> None:
    env.driver.fail_next("spawn", "The fake hypervisor ran out of luck")
    server_id = boot(api, image_id, [{"uuid": network_id}])
    body = wait_status(api, server_id, "ERROR")
    assert body["fault"]["message"] == (
        f"Build of instance {server_id} aborted: The fake hypervisor ran out of luck"
    )
    assert body["OS-EXT-STS:power_state"] == states.NOSTATE
    assert server_id not in env.driver.instances
    assert claims(env, server_id) == 1  # an ERROR server keeps its claim until deleted


def test_a_server_stops_and_starts(
    env: Running, api: httpx.Client, image_id: str, network_id: str
) -> None:
    server_id = boot(api, image_id, [{"uuid": network_id}])
    wait_status(api, server_id, "ACTIVE")
    act(api, server_id, {"os-stop": None})
    body = wait_status(api, server_id, "SHUTOFF")
    assert body["OS-EXT-STS:power_state"] == states.SHUTDOWN
    assert env.driver.instances[server_id].power_state == states.SHUTDOWN
    act(api, server_id, {"os-start": None})
    body = wait_status(api, server_id, "ACTIVE")
    assert body["OS-EXT-STS:power_state"] == states.RUNNING


# --- deleting ------------------------------------------------------------------------------


def test_a_delete_frees_claims_and_ports(
    env: Running, api: httpx.Client, image_id: str, net: httpx.Client, network_id: str
) -> None:
    brought = make_port(net, network_id)
    server_id = boot(api, image_id, [{"port": brought["id"]}, {"uuid": network_id}])
    wait_status(api, server_id, "ACTIVE")
    ports = net.get("/ports", params={"device_id": server_id}).json()["ports"]
    [own] = [p for p in ports if p["id"] != brought["id"]]
    assert claims(env, server_id) == 1
    response = api.delete(f"/servers/{server_id}")
    assert response.status_code == 204, response.text
    wait_for(lambda: api.get(f"/servers/{server_id}").status_code == 404, what="the delete")
    row = server_row(env, server_id)
    assert (row.deleted, row.vm_state, row.task_state) == (True, states.DELETED, None)
    assert row.deleted_at is not None and row.terminated_at is not None
    assert server_id not in env.driver.instances
    assert claims(env, server_id) == 0
    assert net.get(f"/ports/{own['id']}").status_code == 404
    response = net.get(f"/ports/{brought['id']}")
    assert response.status_code == 200, response.text
    kept = response.json()["port"]
    assert (kept["device_id"], kept["device_owner"], kept["binding:host_id"]) == ("", "", "")


# --- snapshots -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def glance(env: Running, admin_token: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=env.cloud.base_url + "/image/v2", headers={"X-Auth-Token": admin_token}
    ) as http:
        yield http


def test_a_snapshot_lands_in_the_image_service(
    api: httpx.Client, glance: httpx.Client, image_id: str, network_id: str
) -> None:
    server_id = boot(api, image_id, [{"uuid": network_id}])
    wait_status(api, server_id, "ACTIVE")
    response = act(api, server_id, {"createImage": {"name": "snap"}})
    snapshot_id = response.json()["image_id"]
    image = wait_for(
        lambda: (
            (found := glance.get(f"/images/{snapshot_id}").json())["status"] == "active" and found
        ),
        what="the snapshot image",
    )
    assert (image["disk_format"], image["container_format"]) == ("qcow2", "bare")
    assert image["instance_uuid"] == server_id
    data = glance.get(f"/images/{snapshot_id}/file").content
    assert data[:4] == b"QFI\xfb" and image["size"] == len(data)
    body = wait_status(api, server_id, "ACTIVE")
    assert "fault" not in body


def test_a_failed_snapshot_leaves_no_queued_image(
    env: Running, api: httpx.Client, glance: httpx.Client, image_id: str, network_id: str
) -> None:
    server_id = boot(api, image_id, [{"uuid": network_id}])
    wait_status(api, server_id, "ACTIVE")
    env.driver.fail_next("snapshot", "The fake disk could not be read")
    response = act(api, server_id, {"createImage": {"name": "doomed"}})
    snapshot_id = response.json()["image_id"]
    wait_for(lambda: glance.get(f"/images/{snapshot_id}").status_code == 404, what="cleanup")
    body = wait_status(api, server_id, "ACTIVE")
    assert faults(env, server_id) == ["The fake disk could not be read"]
    assert body["OS-EXT-STS:power_state"] == states.RUNNING


def test_a_refused_upload_fails_the_snapshot(
    env: Running,
    who: tuple[str, str],
    api: httpx.Client,
    glance: httpx.Client,
    image_id: str,
    network_id: str,
) -> None:
    server_id = boot(api, image_id, [{"uuid": network_id}])
    wait_status(api, server_id, "ACTIVE")
    # By hand: the createImage API makes images without formats. This one declares vmdk,
    # which the fake's data is not, so the Image service refuses the upload.
    response = glance.post(
        "/images",
        json={
            "name": "bad-snap",
            "instance_uuid": server_id,
            "disk_format": "vmdk",
            "container_format": "bare",
        },
    )
    assert response.status_code == 201, response.text
    snapshot_id = response.json()["id"]
    start_task(env, server_id, states.IMAGE_SNAPSHOT, "createImage", who)
    wait_for(lambda: settled(env, server_id), what="the failed snapshot")
    [fault] = faults(env, server_id)
    assert "the Image service refused the data: HTTP 400" in fault
    assert glance.get(f"/images/{snapshot_id}").status_code == 404
    assert show(api, server_id)["status"] == "ACTIVE"


# --- restarts and timeouts -----------------------------------------------------------------


def test_a_restarted_agent_converges_what_it_missed(
    env: Running, api: httpx.Client, image_id: str, network_id: str
) -> None:
    running = boot(api, image_id, [{"uuid": network_id}])
    wait_status(api, running, "ACTIVE")
    env.run(env.agent.stop())
    # While no agent listens (the host still counts as up): a stop and a new build.
    act(api, running, {"os-stop": None})
    missed = boot(api, image_id, [{"uuid": network_id}])
    time.sleep(0.3)
    assert show(api, missed)["status"] == "BUILD"
    env.restart_agent()
    wait_status(api, missed, "ACTIVE")
    wait_status(api, running, "SHUTOFF")


def test_a_build_cut_off_by_a_restart_finishes(
    env: Running, api: httpx.Client, image_id: str, network_id: str
) -> None:
    env.driver.spawn_delay = 2.0
    try:
        server_id = boot(api, image_id, [{"uuid": network_id}])
        wait_for(lambda: server_id in env.driver.instances, what="the spawn to begin")
        env.driver.spawn_delay = 0.0
        env.restart_agent()  # cancels the spawn midway: the fake removes what it made
        wait_status(api, server_id, "ACTIVE")
    finally:
        env.driver.spawn_delay = 0.0
    spawns = [c for c in env.driver.calls if c == ("spawn", server_id)]
    assert len(spawns) == 1  # the cut-off one never reached its end


def test_builds_stuck_too_long_go_to_error(
    env: Running, who: tuple[str, str], node_id: int
) -> None:
    long_ago = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(
        seconds=env.settings.compute.build_timeout + 60
    )
    unplaced = insert_server(env, who, host=None, created_at=long_ago)

    def dead_host(session: Session) -> None:
        session.add(
            models.Service(
                uuid=str(uuid.uuid4()),
                host="dead-host",
                binary="nova-compute",
                last_seen_up=long_ago,
            )
        )

    env.db(dead_host, write=True)
    on_dead_host = insert_server(env, who, host="dead-host", created_at=long_ago)
    recent = insert_server(env, who, host=None)
    failed = env.run(compute_rpc.sweep(env.database))
    assert unplaced in failed and on_dead_host not in failed and recent not in failed
    row = server_row(env, unplaced)
    assert (row.vm_state, row.task_state) == (states.ERROR, None)
    timeout = env.settings.compute.build_timeout
    assert faults(env, unplaced) == [
        f"Build of instance {unplaced} timed out after {timeout} seconds."
    ]
    assert server_row(env, on_dead_host).vm_state == states.BUILDING
    results = env.db(
        lambda s: list(
            s.scalars(
                select(models.InstanceActionEvent.result)
                .join(models.InstanceAction)
                .where(models.InstanceAction.server_id == unplaced)
            )
        )
    )
    assert results == ["Error"]
    assert env.db(lambda s: build_timeouts.fail_stuck_builds(s), write=True) == []
