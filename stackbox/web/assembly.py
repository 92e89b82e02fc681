"""Build the whole application from settings: services, policy, keys, caches."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import gc
import hashlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from oslo_policy import policy as oslo_policy

from stackbox import config, policy
from stackbox.agent.compute import driver as compute_driver
from stackbox.agent.compute import fake as fake_compute_driver
from stackbox.agent.compute import qemu as qemu_compute_driver
from stackbox.agent.compute import service as compute_agent
from stackbox.agent.network import fake as fake_network_agent
from stackbox.agent.network import linux as linux_network_agent
from stackbox.bus import amqp as amqp_bus
from stackbox.bus import memory as memory_bus
from stackbox.bus import messages
from stackbox.compute import api as compute_api
from stackbox.compute import policies as compute_policies
from stackbox.compute import runtime as compute_runtime
from stackbox.controller import service as controller_service
from stackbox.db import session as db_session
from stackbox.identity import api as identity_api
from stackbox.identity import errors as identity_errors
from stackbox.identity import keys, policies, revocations, runtime
from stackbox.image import api as image_api
from stackbox.image import policies as image_policies
from stackbox.image import prefetcher as image_prefetcher
from stackbox.image import runtime as image_runtime
from stackbox.image import upkeep as image_upkeep
from stackbox.network import api as network_api
from stackbox.network import policies as network_policies
from stackbox.network import runtime as network_runtime
from stackbox.web import app as web_app

LOG = logging.getLogger(__name__)


def policy_rules() -> dict[str, list[oslo_policy.RuleDefault]]:
    """Every service's default rules, by service (what ``stackbox policy dump`` prints)."""
    return {
        "identity": policies.list_rules(),
        "image": image_policies.list_rules(),
        "network": network_policies.list_rules(),
        "compute": compute_policies.list_rules(),
    }


def init_policy(settings: config.Settings) -> None:
    for service, rules in policy_rules().items():
        policy.init(service, rules, Path(settings.state_dir) / "policy" / f"{service}.yaml")


def token_keys(settings: config.Settings) -> keys.KeyRepository:
    return keys.KeyRepository(settings.state_dir / "fernet-keys", settings.identity.max_active_keys)


def credential_keys(settings: config.Settings) -> keys.KeyRepository:
    return keys.KeyRepository(
        settings.state_dir / "credential-keys", settings.identity.max_active_keys
    )


def init_identity(settings: config.Settings) -> runtime.IdentityRuntime:
    tokens = token_keys(settings)
    creds = credential_keys(settings)
    tokens.ensure()
    creds.ensure()
    rt = runtime.IdentityRuntime(
        settings=settings.identity,
        base_url=settings.base_url,
        region=settings.region,
        token_keys=tokens,
        credential_keys=creds,
        state_dir=settings.state_dir,
    )
    runtime.init(rt)
    identity_errors.AUTH_URI["value"] = rt.identity_url
    return rt


def init_network(settings: config.Settings) -> None:
    network_runtime.init(settings.network, settings.base_url)


def init_compute(settings: config.Settings) -> None:
    compute_runtime.init(settings.compute, settings.base_url, settings.hostname)


def init_image(settings: config.Settings) -> None:
    image_runtime.init(settings.image, settings.state_dir, settings.base_url)


def recover_image_data(database: db_session.Database) -> None:
    """Images a stopped process left mid-upload or mid-import go back to a state a
    client can retry from, and the stores lose files no image refers to."""
    image_upkeep.recover(database)


def image_sweeper(
    database: db_session.Database, settings: config.Settings
) -> Coroutine[Any, Any, None] | None:
    """The periodic store sweep, if the settings ask for one."""
    interval = settings.image.store_sweep_interval
    return image_upkeep.sweep_every(database, interval) if interval > 0 else None


def load_revocations(database: db_session.Database, settings: config.Settings) -> None:
    keep = settings.identity.token_expiration + settings.identity.allow_expired_window
    cutoff = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(
        seconds=keep
    )
    database.run(lambda s: revocations.prune(s, cutoff), write=True)
    database.run(revocations.INDEX.load, write=False)


@dataclasses.dataclass
class NetworkPlane:
    """The bus, the controller's loops and this node's network and compute agents, as
    asyncio tasks of the API's process (the all-in-one layout of DESIGN §1)."""

    bus: memory_bus.Bus | amqp_bus.Bus
    controller: controller_service.Controller
    agents: list[fake_network_agent.FakeNetworkAgent]
    loop: asyncio.AbstractEventLoop | None = None
    compute_agents: list[compute_agent.ComputeAgent] = dataclasses.field(default_factory=list)

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        if isinstance(self.bus, amqp_bus.Bus):
            await self.bus.connect()
        # The API calls compute agents (console output) over this bus, on this loop.
        compute_runtime.attach_bus(self.bus, self.loop)
        await self.controller.start()
        for agent in self.agents:
            await agent.start()
        for node in self.compute_agents:
            await node.start()

    async def stop(self) -> None:
        for node in self.compute_agents:
            await node.stop()
        for agent in self.agents:
            await agent.stop()
        await self.controller.stop()
        compute_runtime.detach_bus(self.bus)
        await self.bus.close()


def network_plane(settings: config.Settings, database: db_session.Database) -> NetworkPlane:
    """The in-process bus, the controller, and (unless turned off) the fake network agent
    of this host: ports bound to ``settings.hostname`` go ACTIVE through the real path;
    likewise its compute agent on the fake driver drives servers placed on this host."""
    network = settings.network
    bus: memory_bus.Bus | amqp_bus.Bus = (
        amqp_bus.Bus(settings.bus_url) if settings.bus_url else memory_bus.Bus()
    )
    controller = controller_service.Controller(
        database, bus, sweep_interval=max(network.agent_down_time / 2, 1.0)
    )
    agents: list[fake_network_agent.FakeNetworkAgent] = []
    if network.agent == "linux":
        agents.append(
            linux_network_agent.LinuxNetworkAgent(
                bus,
                settings.hostname,
                run_dir=run_dir(settings),
                availability_zone=network.availability_zone,
                report_interval=network.agent_report_interval,
                resync_interval=network.agent_resync_interval,
            )
        )
    if network.agent == "fake":
        agents.append(
            fake_network_agent.FakeNetworkAgent(
                bus,
                settings.hostname,
                availability_zone=network.availability_zone,
                report_interval=network.agent_report_interval,
                resync_interval=network.agent_resync_interval,
            )
        )
    compute = settings.compute
    compute_agents = []

    def agent_of(host: str, driver: compute_driver.Driver) -> compute_agent.ComputeAgent:
        return compute_agent.ComputeAgent(
            bus,
            host,
            driver,
            report_interval=compute.agent_report_interval,
            resync_interval=compute.agent_resync_interval,
            work_dir=settings.state_dir
            / ("compute-agent" if host == settings.hostname else f"compute-agent-{host}"),
        )

    if compute.driver == "fake":
        for host in fake_hosts(settings):
            driver = fake_compute_driver.FakeDriver(
                host,
                vcpus=compute.fake_vcpus,
                memory_mb=compute.fake_memory_mb,
                local_gb=compute.fake_local_gb,
            )
            compute_agents.append(agent_of(host, driver))
            if host != settings.hostname and network.agent == "fake":
                # Ports bound to the extra host need its L2 agent (DHCP and L3 stay here).
                agents.append(
                    fake_network_agent.FakeNetworkAgent(
                        bus,
                        host,
                        availability_zone=network.availability_zone,
                        report_interval=network.agent_report_interval,
                        resync_interval=network.agent_resync_interval,
                        identities=fake_network_agent.L2_ONLY,
                    )
                )
    if compute.driver == "qemu":

        async def call(request: Any) -> Any:
            return await bus.call(messages.CONTROLLER_TOPIC, request, 30.0)

        qemu = qemu_compute_driver.QemuDriver(
            settings.hostname,
            settings.state_dir / "compute-agent",
            call,
            accel=compute.qemu_accel,
            machine=compute.qemu_machine,
        )
        compute_agents.append(agent_of(settings.hostname, qemu))
    return NetworkPlane(bus, controller, agents, compute_agents=compute_agents)


def run_dir(settings: config.Settings) -> Path:
    """The Linux network agent's runtime files: one directory per cloud on the host."""
    if settings.network.run_dir:
        return Path(settings.network.run_dir)
    digest = hashlib.sha1(str(Path(settings.state_dir).resolve()).encode()).hexdigest()[:12]
    return Path("/run/stackbox") / digest


def fake_hosts(settings: config.Settings) -> list[str]:
    """This node, then ``compute.fake_extra_hosts`` more fake compute hosts named
    ``<hostname>-2``, ``-3``...: a multi-host cloud in one process, for trying
    scheduling, server groups and migrations against the API."""
    extra = settings.compute.fake_extra_hosts
    return [settings.hostname] + [f"{settings.hostname}-{i}" for i in range(2, extra + 2)]


def build(
    settings: config.Settings,
    database: db_session.Database,
    plane: NetworkPlane | None = None,
) -> web_app.StackboxApp:
    """The ASGI app; the database must already be migrated. ``plane`` replaces the
    network plane the settings describe (tests pass their own to reach its agents)."""
    rt = init_identity(settings)
    init_image(settings)
    init_network(settings)
    init_compute(settings)
    init_policy(settings)
    load_revocations(database, settings)
    recover_image_data(database)
    background: list[asyncio.Task[None]] = []
    plane = plane or network_plane(settings, database)

    async def start() -> None:
        await plane.start()
        interval = settings.identity.key_rotation_interval
        if interval > 0:
            background.append(asyncio.create_task(_rotate_every(rt, interval)))
        # The image cache prefetcher: fetches queued images into the node cache.
        prefetch_interval = settings.image.cache_prefetch_interval
        if prefetch_interval > 0:
            background.append(
                asyncio.create_task(image_prefetcher.run_every(database, prefetch_interval))
            )
        sweeper = image_sweeper(database, settings)
        if sweeper is not None:
            background.append(asyncio.create_task(sweeper))
        # Everything built so far lives as long as the process: keep it out of the
        # garbage collector's way (listing 1,000 ports spiked to ~170 ms on full scans).
        gc.freeze()

    async def stop() -> None:
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await plane.stop()
        database.dispose()

    startup: list[Callable[[], Awaitable[None]]] = [start]
    shutdown: list[Callable[[], Awaitable[None]]] = [stop]
    return web_app.StackboxApp(
        services=[
            identity_api.service(),
            image_api.service(),
            network_api.service(),
            compute_api.service(),
        ],
        database=database,
        authenticator=identity_api.authenticator(),
        base_url=settings.base_url,
        on_startup=startup,
        on_shutdown=shutdown,
    )


async def _rotate_every(rt: runtime.IdentityRuntime, interval: int) -> None:
    while True:
        await asyncio.sleep(interval)
        index = await asyncio.to_thread(rt.token_keys.rotate)
        LOG.info("rotated the token keys; primary key is now %d", index)
