"""The fake network agent: the real agent's control loop with nothing plugged.

It does everything the Linux agents will do except touch the kernel: it listens
for nudges, keys work by port, network and router, fetches the desired state by
RPC, "wires" what is bound to its host (in memory), reports ports ACTIVE or DOWN,
heartbeats as Neutron's Linux bridge, DHCP, L3 and metadata agents, and resyncs
everything on start, periodically and when the controller says it was revived.
So the API shows what a real cloud shows (ports ACTIVE, agents alive) with no
data plane, and the data-plane agents can replace it piece by piece.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from stackbox.agent import runtime
from stackbox.bus import interface, messages, specs

LOG = logging.getLogger(__name__)

Key = tuple[str, str]


@dataclasses.dataclass(frozen=True)
class Identity:
    """One agent as Neutron lists it: the fake answers for all of them."""

    agent_type: str
    binary: str
    topic: str
    # Only DHCP and L3 agents have an availability zone (the zones of networks, routers).
    zoned: bool
    configurations: Mapping[str, Any]


LINUX_BRIDGE = "Linux bridge agent"
DHCP = "DHCP agent"
L3 = "L3 agent"
METADATA = "Metadata agent"

IDENTITIES = (
    Identity(
        LINUX_BRIDGE,
        "neutron-linuxbridge-agent",
        "N/A",
        False,
        {
            "bridge_mappings": {},
            "interface_mappings": {},
            "l2_population": True,
            "tunnel_types": ["vxlan"],
            "extensions": [],
        },
    ),
    Identity(
        DHCP,
        "neutron-dhcp-agent",
        "dhcp_agent",
        True,
        {"dhcp_driver": "fake", "dhcp_lease_duration": 86400, "log_agent_heartbeats": False},
    ),
    Identity(
        L3,
        "neutron-l3-agent",
        "l3_agent",
        True,
        {
            "agent_mode": "dvr_snat",
            "handle_internal_only_routers": True,
            "interface_driver": "fake",
            "log_agent_heartbeats": False,
            "extensions": [],
        },
    ),
    Identity(
        METADATA,
        "neutron-metadata-agent",
        "N/A",
        False,
        {"metadata_proxy_socket": "", "log_agent_heartbeats": False},
    ),
)
# A compute-only host's agents: the L2 agent alone (ports bound to a host need one;
# DHCP and routers live on network hosts).
L2_ONLY = tuple(i for i in IDENTITIES if i.agent_type == LINUX_BRIDGE)


class FakeNetworkAgent:
    def __init__(
        self,
        bus: interface.Bus,
        host: str,
        *,
        availability_zone: str = "nova",
        report_interval: float = 30.0,
        resync_interval: float = 60.0,
        rpc_timeout: float = 30.0,
        identities: tuple[Identity, ...] = IDENTITIES,
    ) -> None:
        self.bus = bus
        self.host = host
        self.availability_zone = availability_zone
        self.report_interval = report_interval
        self.resync_interval = resync_interval
        self.rpc_timeout = rpc_timeout
        self.identities = identities
        self.queue: runtime.WorkQueue[Key] = runtime.WorkQueue(
            f"fake-agent@{host}", self._reconcile
        )
        # What this host has "wired": port id -> (network id, reported status).
        self.ports: dict[str, tuple[str, str]] = {}
        self.dhcp_networks: set[str] = set()
        self.routers: set[str] = set()
        self.agent_ids: dict[str, str] = {}
        self._subscriptions: list[interface.Subscription] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False

    # --- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen first (no nudge is missed), then report and resync in the background."""
        broadcast = self.bus.subscribe([messages.NETWORK_TOPIC])
        own = self.bus.subscribe([messages.host_topic(self.host)])
        self._subscriptions = [broadcast, own]
        self.queue.start()
        self._tasks = [
            asyncio.create_task(self._listen(broadcast, True), name=f"{self.host}-broadcast"),
            asyncio.create_task(self._listen(own, False), name=f"{self.host}-nudges"),
            asyncio.create_task(self._run_reports(), name=f"{self.host}-heartbeat"),
            asyncio.create_task(
                runtime.every(self.resync_interval, self.resync, f"resync on {self.host}"),
                name=f"{self.host}-resync",
            ),
        ]

    async def stop(self) -> None:
        """Stop everything (heartbeats too: the controller will see this agent die)."""
        for subscription in self._subscriptions:
            subscription.close()
        self._subscriptions = []
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.queue.stop()

    async def _run_reports(self) -> None:
        # Report before the first sync, as Neutron's agents do: a new agent gets
        # registered (and scheduled) before it asks what it hosts.
        delay = 0.2
        while True:
            try:
                await self.report_state()
                await self.resync()
                break
            except interface.BusError as exc:
                LOG.warning("agents on %s cannot reach the controller yet: %s", self.host, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.report_interval)
        await runtime.every(self.report_interval, self.report_state, f"heartbeat of {self.host}")

    # --- nudges -------------------------------------------------------------------------------

    async def _listen(self, subscription: interface.Subscription, broadcast: bool) -> None:
        async for record in subscription:
            if isinstance(record, messages.Nudge):
                self.on_nudge(record, broadcast=broadcast)

    def on_nudge(self, nudge: messages.Nudge, *, broadcast: bool = False) -> None:
        if nudge.kind == "port":
            # Every change of a port bound to this host (or just unbound from it) comes
            # on the host's topic; broadcast port nudges are for DHCP, which a fake
            # agent does not serve, so only a port it still holds is worth a look.
            if not broadcast or nudge.id in self.ports:
                self.queue.add(("port", nudge.id))
        elif nudge.kind == "network":
            self.queue.add(("network", nudge.id))
            # A network's admin state decides its ports' status.
            for port_id, (network_id, _) in list(self.ports.items()):
                if network_id == nudge.id:
                    self.queue.add(("port", port_id))
        elif nudge.kind == "router":
            self.queue.add(("router", nudge.id))
        elif nudge.kind == "agent":
            # An admin enabled, disabled or deleted one of this host's agents: what it
            # serves may have changed wholesale (Neutron's agent_updated -> full sync).
            self.queue.add(("resync", ""))
        # Security groups: nothing to filter without a data plane.

    # --- reconcilers (keyed, level-based: twice is the same as once) --------------------------

    async def _call(self, request: Any) -> Any:
        return await self.bus.call(messages.CONTROLLER_TOPIC, request, self.rpc_timeout)

    async def _reconcile(self, key: Key) -> None:
        kind, ident = key
        if kind == "port":
            await self.reconcile_port(ident)
        elif kind == "network":
            await self.reconcile_network(ident)
        elif kind == "router":
            await self.reconcile_router(ident)
        elif kind == "resync":
            await self.resync()

    async def reconcile_port(self, port_id: str) -> None:
        answer = await self._call(messages.GetPortsForHost(self.host, (port_id,)))
        wanted = {p.id: p for p in answer.ports}.get(port_id)
        if wanted is None:
            # Unbound from this host or deleted: unplug, report nothing.
            self.ports.pop(port_id, None)
            return
        status = self.observed_status(wanted)
        ack = await self._call(
            messages.ReportPortStatus(self.host, (specs.PortStatus(port_id, status),))
        )
        if port_id in ack.unknown:
            self.ports.pop(port_id, None)
        else:
            self.ports[port_id] = (wanted.network_id, status)

    @staticmethod
    def observed_status(port: specs.PortSpec) -> str:
        """What a real agent would see once the port is wired: up unless disabled."""
        return "ACTIVE" if port.admin_state_up and port.network_admin_state_up else "DOWN"

    async def reconcile_network(self, network_id: str) -> None:
        if not self._has(DHCP):
            return
        served = await self._call(messages.GetDhcpNetworks(self.host))
        if network_id not in served.network_ids:
            self.dhcp_networks.discard(network_id)
            return
        info = await self._call(messages.GetNetwork(network_id))
        if info.network is None:
            self.dhcp_networks.discard(network_id)
        else:
            self.dhcp_networks.add(network_id)

    async def reconcile_router(self, router_id: str) -> None:
        if not self._has(L3):
            return
        answer = await self._call(messages.GetRouters(self.host, (router_id,)))
        if any(r.id == router_id for r in answer.routers):
            self.routers.add(router_id)
        else:
            self.routers.discard(router_id)

    def _has(self, agent_type: str) -> bool:
        return any(i.agent_type == agent_type for i in self.identities)

    async def resync(self) -> None:
        """Queue everything this host should have and everything it has (to drop the stale)."""
        ports = await self._call(messages.GetPortsForHost(self.host))
        for port_id in {p.id for p in ports.ports} | set(self.ports):
            self.queue.add(("port", port_id))
        if self._has(DHCP):
            served = await self._call(messages.GetDhcpNetworks(self.host))
            for network_id in set(served.network_ids) | self.dhcp_networks:
                self.queue.add(("network", network_id))
        if self._has(L3):
            routers = await self._call(messages.GetRouters(self.host))
            for router_id in {r.id for r in routers.routers} | self.routers:
                self.queue.add(("router", router_id))

    # --- heartbeats ---------------------------------------------------------------------------

    def _configurations(self, identity: Identity) -> dict[str, Any]:
        counts: dict[str, dict[str, Any]] = {
            LINUX_BRIDGE: {"devices": len(self.ports)},
            DHCP: {"networks": len(self.dhcp_networks)},
            L3: {"routers": len(self.routers)},
        }
        return {**identity.configurations, **counts.get(identity.agent_type, {})}

    async def report_state(self) -> None:
        """One heartbeat per identity; a full resync if the controller thought us dead."""
        revived = False
        for identity in self.identities:
            ack = await self._call(
                messages.Heartbeat(
                    agent_type=identity.agent_type,
                    binary=identity.binary,
                    topic=identity.topic,
                    host=self.host,
                    availability_zone=self.availability_zone if identity.zoned else None,
                    configurations=self._configurations(identity),
                    start_flag=not self._started,
                )
            )
            self.agent_ids[identity.agent_type] = ack.agent_id
            revived = revived or ack.status == messages.AGENT_REVIVED
        first = not self._started
        self._started = True
        if revived and not first:
            LOG.info("agents on %s were seen as dead; resyncing", self.host)
            await self.resync()
