"""The Linux network agent: the fake agent's control loop (nudges, keyed work,
RPC, heartbeats, resync) with the kernel really changed: L2 (``l2``: bridges and
taps), DHCP (``dhcp``: namespaces and dnsmasq) and routers (``l3``: SNAT and
floating IPs).

It reports as Neutron's Linux bridge, DHCP and L3 agents; security groups and
metadata are not built on this data plane yet, so it claims no metadata agent.
What it made is remembered and removed on ``stop`` (``keep_on_stop`` leaves it
running, as Neutron's agents do on restart); it never sweeps by name prefix,
because several stackbox clouds may share one host.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from pathlib import Path

from stackbox.agent import runtime
from stackbox.agent.network import dhcp, fake, l2, l3
from stackbox.bus import interface, messages, specs
from stackbox.linux import links

CONFIGURATIONS = {
    fake.DHCP: {"dhcp_driver": "dnsmasq"},
    fake.L3: {"agent_mode": "legacy", "interface_driver": "linuxbridge"},
}
# Every network, whatever its physical network, is a bridge of its own here (with no
# uplink): reporting no mappings lets ports of flat and VLAN networks bind to this host.
NO_MAPPINGS = ("bridge_mappings", "interface_mappings")


def _as_linux(identity: fake.Identity) -> fake.Identity:
    changes = CONFIGURATIONS.get(identity.agent_type, {})
    kept = {k: v for k, v in identity.configurations.items() if k not in NO_MAPPINGS}
    return dataclasses.replace(identity, configurations={**kept, **changes})


# On this one host, vxlan networks' ports share the bridge (carrying them to other hosts
# is not built yet: see ``l2``); binding needs the agent to list the type.
IDENTITIES = tuple(
    _as_linux(i) for i in fake.IDENTITIES if i.agent_type in (fake.LINUX_BRIDGE, fake.DHCP, fake.L3)
)
TAP_POLL_SECONDS = 1.0


class LinuxNetworkAgent(fake.FakeNetworkAgent):
    def __init__(
        self,
        bus: interface.Bus,
        host: str,
        *,
        run_dir: Path,
        lease_seconds: int = 86400,
        keep_on_stop: bool = False,
        identities: tuple[fake.Identity, ...] = IDENTITIES,
        **options: float | str,
    ) -> None:
        super().__init__(bus, host, identities=identities, **options)  # type: ignore[arg-type]
        self.run_dir = run_dir
        self.lease_seconds = lease_seconds
        self.keep_on_stop = keep_on_stop
        # Ports bound here whose tap does not exist yet (the instance is still starting).
        self.waiting: set[str] = set()
        # Network id -> the DHCP port it is served from on this host.
        self.dhcp_ports: dict[str, str] = {}
        # Router id -> the networks its ports are on (their bridges may go with it).
        self.router_networks: dict[str, set[str]] = {}

    async def start(self) -> None:
        await super().start()
        self._tasks.append(
            asyncio.create_task(
                runtime.every(TAP_POLL_SECONDS, self._poll_taps, f"taps on {self.host}"),
                name=f"{self.host}-taps",
            )
        )

    async def stop(self) -> None:
        await super().stop()
        if not self.keep_on_stop:
            for router_id, networks in list(self.router_networks.items()):
                await asyncio.to_thread(l3.remove, router_id, networks)
            self.router_networks.clear()
            for network_id in list(self.dhcp_ports):
                await asyncio.to_thread(self._remove_dhcp, network_id)
            for network_id in {network for network, _ in self.ports.values()}:
                await asyncio.to_thread(l2.remove_bridge_if_empty, network_id)
            with contextlib.suppress(OSError):  # left when something still runs from it
                for directory in (self.run_dir / "dhcp", self.run_dir):
                    directory.rmdir()

    # --- nudges -------------------------------------------------------------------------------

    def on_nudge(self, nudge: messages.Nudge, *, broadcast: bool = False) -> None:
        super().on_nudge(nudge, broadcast=broadcast)
        # Any port of a served network changes what dnsmasq hands out.
        if nudge.kind == "port" and nudge.network_id in self.dhcp_ports:
            self.queue.add(("network", nudge.network_id))

    async def _poll_taps(self) -> None:
        """Taps come and go with their instances (a hard reboot or a start makes a new one),
        and no nudge says so: look, as Neutron's agents poll their devices."""
        for port_id in list(self.waiting):
            if links.exists(l2.tap_name(port_id)):
                self.queue.add(("port", port_id))
        for port_id, (network_id, status) in list(self.ports.items()):
            if port_id in self.waiting or status != "ACTIVE":
                continue
            if links.master(l2.tap_name(port_id)) != l2.bridge_name(network_id):
                self.queue.add(("port", port_id))

    # --- ports (L2) ---------------------------------------------------------------------------

    async def reconcile_port(self, port_id: str) -> None:
        answer = await self._call(messages.GetPortsForHost(self.host, (port_id,)))
        wanted = {p.id: p for p in answer.ports}.get(port_id)
        if wanted is None:
            self.waiting.discard(port_id)
            gone = self.ports.pop(port_id, None)
            if gone is not None:
                await asyncio.to_thread(l2.remove_bridge_if_empty, gone[0])
            return
        wired = await asyncio.to_thread(l2.wire, wanted)
        if wired:
            self.waiting.discard(port_id)
        else:
            self.waiting.add(port_id)
        status = self.observed(wanted, wired)
        ack = await self._call(
            messages.ReportPortStatus(self.host, (specs.PortStatus(port_id, status),))
        )
        if port_id in ack.unknown:
            self.ports.pop(port_id, None)
            self.waiting.discard(port_id)
        else:
            self.ports[port_id] = (wanted.network_id, status)

    @staticmethod
    def observed(port: specs.PortSpec, wired: bool) -> str:
        return "ACTIVE" if wired and port.admin_state_up and port.network_admin_state_up else "DOWN"

    # --- networks (DHCP) ----------------------------------------------------------------------

    def _directory(self, network_id: str) -> Path:
        return self.run_dir / "dhcp" / network_id

    def _remove_dhcp(self, network_id: str) -> None:
        dhcp.remove(network_id, self._directory(network_id), self.dhcp_ports.pop(network_id, None))

    async def reconcile_network(self, network_id: str) -> None:
        if not self._has(fake.DHCP):
            return
        served = await self._call(messages.GetDhcpNetworks(self.host))
        info = None
        if network_id in served.network_ids:
            info = (await self._call(messages.GetNetwork(network_id))).network
        port = None
        if info is not None and info.admin_state_up and dhcp.dhcp_subnets(info):
            # Most changes leave this host's DHCP port as it is: ask the controller (a
            # write) only when the port is missing or lacks a DHCP subnet's address.
            port = dhcp.own_port(info, self.host)
            if port is None:
                port = (await self._call(messages.EnsureDhcpPort(self.host, network_id))).port
        if info is None or port is None:
            if network_id in self.dhcp_ports:
                await asyncio.to_thread(self._remove_dhcp, network_id)
                await self._call(messages.ReleaseDhcpPort(self.host, network_id))
            self.dhcp_networks.discard(network_id)
            return
        if port.id not in {p.id for p in info.ports}:
            # Made just now: read the network again so that its hosts include the port.
            info = (await self._call(messages.GetNetwork(network_id))).network or info
        await asyncio.to_thread(
            dhcp.ensure, info, port, self._directory(network_id), self.lease_seconds
        )
        self.dhcp_ports[network_id] = port.id
        self.dhcp_networks.add(network_id)

    # --- routers (L3) -------------------------------------------------------------------------

    async def reconcile_router(self, router_id: str) -> None:
        if not self._has(fake.L3):
            return
        answer = await self._call(messages.GetRouters(self.host, (router_id,)))
        router = next((r for r in answer.routers if r.id == router_id), None)
        if router is None or not router.admin_state_up:
            networks = self.router_networks.pop(router_id, set())
            await asyncio.to_thread(l3.remove, router_id, networks)
            self.routers.discard(router_id)
            return
        await asyncio.to_thread(l3.ensure, router)
        ports = [*router.interfaces, *([router.gateway] if router.gateway else [])]
        now = {p.network_id for p in ports}
        for network_id in self.router_networks.get(router_id, set()) - now:
            await asyncio.to_thread(l2.remove_bridge_if_empty, network_id)
        self.router_networks[router_id] = now
        self.routers.add(router_id)
