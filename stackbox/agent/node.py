"""``stackbox agent``: the agents of one host as a process of their own (DESIGN §1).

They reach the controller only over the AMQP bus (``bus_url``): the network agents
(DHCP, L3 and L2 with role ``network``; the L2 agent alone on a compute-only host,
since ports bound to a host need one) and the compute agent with the fake driver
(role ``compute``). No database, no API: nudges in, RPC to the controller, reports out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Protocol

from stackbox import config
from stackbox.agent.compute import fake as fake_driver
from stackbox.agent.compute import service as compute_service
from stackbox.agent.network import fake as fake_network
from stackbox.bus import amqp

LOG = logging.getLogger(__name__)
ROLES = ("compute", "network")


class Agent(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def agents(settings: config.Settings, bus: amqp.Bus, roles: Iterable[str]) -> list[Agent]:
    roles = set(roles)
    host = settings.hostname
    network, compute = settings.network, settings.compute
    built: list[Agent] = []
    identities: tuple[fake_network.Identity, ...] = fake_network.IDENTITIES
    if "network" not in roles:
        identities = tuple(i for i in identities if i.agent_type == fake_network.LINUX_BRIDGE)
    built.append(
        fake_network.FakeNetworkAgent(
            bus,
            host,
            availability_zone=network.availability_zone,
            report_interval=network.agent_report_interval,
            resync_interval=network.agent_resync_interval,
            identities=identities,
        )
    )
    if "compute" in roles:
        built.append(
            compute_service.ComputeAgent(
                bus,
                host,
                fake_driver.FakeDriver(
                    host,
                    vcpus=compute.fake_vcpus,
                    memory_mb=compute.fake_memory_mb,
                    local_gb=compute.fake_local_gb,
                ),
                report_interval=compute.agent_report_interval,
                resync_interval=compute.agent_resync_interval,
                work_dir=settings.state_dir / "compute-agent",
            )
        )
    return built


async def run(settings: config.Settings, roles: Iterable[str], stop: asyncio.Event) -> None:
    """Run this host's agents until ``stop`` is set."""
    bus = await amqp.Bus.open(settings.bus_url)
    running: list[Agent] = []
    try:
        for agent in agents(settings, bus, roles):
            await agent.start()
            running.append(agent)
        LOG.info("agents of %s running on %s", settings.hostname, amqp.redacted(bus.url))
        await stop.wait()
    finally:
        for agent in reversed(running):
            await agent.stop()
        await bus.close()
