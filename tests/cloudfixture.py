"""Real clouds for tests: in-process (functional) or as a `stackbox up` process (e2e).

Functional clouds run the real app on uvicorn in a thread with a temporary state
dir and SQLite. The identity runtime is process-wide, so only one in-process
cloud may run at a time: use them from module-scoped fixtures.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import openstack
import openstack.config
import uvicorn

from stackbox import allinone, config
from stackbox.agent.compute import fake as fake_compute_driver
from stackbox.agent.compute import service as compute_agent
from stackbox.agent.network import fake as fake_network_agent
from stackbox.db import session as db_session
from stackbox.web import assembly

ADMIN_PASSWORD = "secret-admin-pw"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class Cloud:
    base_url: str
    state_dir: Path
    # An in-process cloud's bus, controller and agents (None for a `stackbox up` process).
    plane: assembly.NetworkPlane | None = None

    @property
    def identity_url(self) -> str:
        return f"{self.base_url}/identity"

    @property
    def clouds_yaml(self) -> Path:
        return self.state_dir / "clouds.yaml"

    def passwords(self) -> dict[str, str]:
        return json.loads((self.state_dir / "passwords.json").read_text())

    def sdk(self, name: str = "stackbox-admin") -> openstack.connection.Connection:
        loader = openstack.config.OpenStackConfig(
            config_files=[str(self.clouds_yaml)], vendor_files=[]
        )
        return openstack.connection.Connection(config=loader.get_one(cloud=name))

    def connect(self, **auth: Any) -> openstack.connection.Connection:
        """A connection for any user: connect(username=..., password=..., project_id=...)."""
        auth.setdefault("user_domain_id", "default")
        if "project_id" in auth or "project_name" in auth:
            auth.setdefault("project_domain_id", "default")
        return openstack.connection.Connection(
            auth_url=self.identity_url, region_name="RegionOne", **auth
        )

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.identity_url, timeout=30)

    def token(
        self,
        username: str = "admin",
        password: str | None = None,
        project: str | None = "admin",
        **scope: Any,
    ) -> str:
        """A token by plain HTTP (project-scoped by name in Default unless scope says otherwise)."""
        password = password if password is not None else self.passwords()[username]
        body: dict[str, Any] = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": username,
                            "domain": {"id": "default"},
                            "password": password,
                        }
                    },
                }
            }
        }
        if scope:
            body["auth"]["scope"] = scope
        elif project:
            body["auth"]["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
        with self.http() as client:
            response = client.post("/v3/auth/tokens", json=body)
        assert response.status_code == 201, response.text
        return response.headers["X-Subject-Token"]

    def on_loop(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run ``coroutine`` on an in-process cloud's event loop (where its bus lives)."""
        assert self.plane is not None and self.plane.loop is not None, "not an in-process cloud"
        return asyncio.run_coroutine_threadsafe(coroutine, self.plane.loop).result(timeout)

    def start_host(
        self, host: str, *, report_interval: float = 10.0, **driver: Any
    ) -> compute_agent.ComputeAgent:
        """Another compute node on an in-process cloud: a compute agent on the fake driver
        (``driver``: vcpus, memory_mb, local_gb, spawn_delay) and the host's L2 agent
        (ports bound to a host need one), on the cloud's bus and loop. Returns once both
        have registered; the cloud stops them when it stops."""
        plane = self.plane
        assert plane is not None, "not an in-process cloud"
        l2 = fake_network_agent.L2_ONLY
        network = fake_network_agent.FakeNetworkAgent(
            plane.bus, host, report_interval=report_interval, identities=l2
        )
        node = compute_agent.ComputeAgent(
            plane.bus,
            host,
            fake_compute_driver.FakeDriver(host, **driver),
            report_interval=report_interval,
            work_dir=self.state_dir / f"compute-agent-{host}",
        )

        async def start() -> None:
            # In the plane's lists, so the app's shutdown stops them with its own agents.
            plane.agents.append(network)
            plane.compute_agents.append(node)
            await network.start()
            await node.start()
            while node.service_id is None or len(network.agent_ids) < len(l2):
                await asyncio.sleep(0.02)

        self.on_loop(start())
        return node


@contextlib.contextmanager
def in_process(
    tmp: Path,
    image: dict[str, Any] | None = None,
    database_url: str = "",
    network: dict[str, Any] | None = None,
    compute: dict[str, Any] | None = None,
    **identity: Any,
) -> Iterator[Cloud]:
    """Run the real app in this process; ``identity``, ``image``, ``network`` override settings.

    ``compute`` overrides compute settings.
    ``database_url`` puts the cloud on that database (SQLite in ``tmp`` by default).
    The first-start networks (public, private, router1) are made only when ``network``
    asks for them (``create_defaults=True``): most tests want an empty cloud.
    """
    network = {"create_defaults": False, **(network or {})}
    # Likewise DevStack's flavors and the default image (``compute`` may ask for them).
    compute = {"create_defaults": False, **(compute or {})}
    identity.setdefault("bcrypt_rounds", 4)
    port = free_port()
    settings = config.Settings(
        state_dir=tmp,
        database_url=database_url,
        port=port,
        admin_password=ADMIN_PASSWORD,
        identity=config.IdentitySettings(**identity),
        image=config.ImageSettings(**(image or {})),
        network=config.NetworkSettings(**network),
        compute=config.ComputeSettings(**compute),
        log_level="warning",
    )
    with serve(settings) as (cloud, _):
        yield cloud


@contextlib.contextmanager
def serve(settings: config.Settings) -> Iterator[tuple[Cloud, db_session.Database]]:
    """The real app for ``settings``, served from a thread of this process (prepared as
    ``up`` prepares it), with its database; HOME points at the state dir meanwhile, since
    ``up`` merges clouds.yaml into ~/.config/openstack."""
    old_home = os.environ.get("HOME")
    os.environ["HOME"] = str(settings.state_dir)
    try:
        sock = allinone.bind(settings.host, settings.port)
        database = allinone.prepare(settings, io.StringIO())
        plane = assembly.network_plane(settings, database)
        app = assembly.build(settings, database, plane)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the in-process cloud did not start")
            time.sleep(0.01)
        try:
            yield (
                Cloud(base_url=settings.base_url, state_dir=settings.state_dir, plane=plane),
                database,
            )
        finally:
            server.should_exit = True
            thread.join(timeout=20)
            sock.close()
    finally:
        if old_home is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = old_home


class ProcessCloud(Cloud):
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def as_process(
    tmp: Path, *extra_args: str, env: dict[str, str] | None = None, command: str = "up"
) -> Iterator[ProcessCloud]:
    """Start `stackbox up` (or ``command``: `controller`) as its own process (what a user
    runs); stop it by its PID."""
    port = free_port()
    run_env = dict(os.environ)
    run_env.update({"HOME": str(tmp), "STACKBOX_IDENTITY_BCRYPT_ROUNDS": "4"})
    run_env.update(env or {})
    state = tmp / "state"
    log = open(tmp / "stackbox.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stackbox",
            command,
            "--state-dir",
            str(state),
            "--port",
            str(port),
            "--admin-password",
            ADMIN_PASSWORD,
            *extra_args,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=run_env,
    )
    cloud = ProcessCloud(base_url=f"http://127.0.0.1:{port}", state_dir=state)
    cloud.process = process
    try:
        wait_ready(cloud, process, tmp / "stackbox.log")
        yield cloud
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def wait_ready(
    cloud: Cloud, process: subprocess.Popen[bytes], log: Path, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"stackbox up exited: {log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{cloud.identity_url}/v3", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"stackbox up did not answer: {log.read_text()}")


class ProjectMember:
    """A user made for one test: `member` (hence `reader`) of a project of its own."""

    def __init__(self, cloud: Cloud, admin: openstack.connection.Connection) -> None:
        self.name = f"u-{uuid.uuid4().hex[:10]}"
        self.password = f"pw-{uuid.uuid4().hex}"
        self.project = admin.identity.create_project(name=f"p-{self.name}", domain_id="default")
        self.id = admin.identity.create_user(name=self.name, password=self.password).id
        admin.identity.assign_project_role_to_user(
            self.project, self.id, admin.identity.find_role("member")
        )
        self.cloud = cloud

    def token(self) -> str:
        return self.cloud.token(self.name, self.password, project=self.project.name)


def wait_for(check: Callable[[], T | None], timeout: float = 10.0, what: str = "condition") -> T:
    """``check()``'s first true value, polling until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
