"""Every message on the bus: nudges, the controller's RPC requests and answers,
agents' status reports and heartbeats.

Topics:
- ``network`` (every network agent) and ``network.<host>`` (the agents of one host):
  ``Nudge`` messages, published by the controller's outbox relay. A nudge names
  what changed and nothing else; the receiver asks for the desired state.
- ``controller``: RPC requests from agents, answered by the controller (one answer
  per request, whichever controller takes it).

The RPC contract (request -> answer), all answered from the database at the time
of the request, so asking twice is the same as asking once:

==================================  =================================================
``GetPortsForHost(host, port_ids)``  ``PortsForHost``: ports bound to ``host``
                                     (``binding:host_id``), optionally only those ids
``GetNetwork(network_id)``           ``NetworkInfo``: the network, its subnets and
                                     ports, or ``network=None`` when it is gone
``GetDhcpNetworks(host)``            ``DhcpNetworks``: ids of networks the DHCP agent
                                     of ``host`` serves (none if it is disabled)
``GetRouters(host, router_ids)``     ``RoutersForHost``: routers scheduled to the L3
                                     agent of ``host``, optionally only those ids
``GetSecurityGroupRulesForPorts``    ``SecurityGroupRules``: each port's groups and
                                     addresses, the groups' rules and member addresses
``GetL2Population(network_id)``      ``L2Population``: which host holds which MAC and
                                     addresses on the network, and hosts' tunnel IPs
``ReportPortStatus(host, ports)``    ``PortStatusAck``: which ports were recorded and
                                     which are not (or no longer) bound to ``host``
``Heartbeat(...)``                   ``HeartbeatAck``: the agent's id and whether the
                                     controller saw it as new, alive or revived
``EnsureDhcpPort(host, network_id)`` ``DhcpPort``: the port the DHCP agent of ``host``
                                     serves the network from (made, bound to ``host``
                                     and given an address on each DHCP subnet when
                                     missing), or ``port=None`` if it serves none
``ReleaseDhcpPort(host, network_id)`` ``DhcpPort(port=None)``: that port deleted
==================================  =================================================

A failed request raises ``RemoteError`` at the caller (see ``memory.Bus.call``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from stackbox.bus import codec, specs

NETWORK_TOPIC = "network"
CONTROLLER_TOPIC = "controller"


def host_topic(host: str) -> str:
    """The topic of the network agents of one host."""
    return f"{NETWORK_TOPIC}.{host}"


# --- nudges ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Nudge(codec.Record):
    """Something changed: ``kind`` (``port``, ``network``, ``router``, ``security_group``)
    and its ``id``. Receivers key their work on it and fetch the desired state."""

    kind: str
    id: str
    network_id: str = ""


# --- RPC requests and answers ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GetPortsForHost(codec.Record):
    host: str
    port_ids: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class PortsForHost(codec.Record):
    host: str
    ports: tuple[specs.PortSpec, ...] = ()


@dataclasses.dataclass(frozen=True)
class GetNetwork(codec.Record):
    network_id: str


@dataclasses.dataclass(frozen=True)
class NetworkInfo(codec.Record):
    network_id: str
    network: specs.NetworkSpec | None = None


@dataclasses.dataclass(frozen=True)
class GetDhcpNetworks(codec.Record):
    host: str


@dataclasses.dataclass(frozen=True)
class DhcpNetworks(codec.Record):
    host: str
    network_ids: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class GetRouters(codec.Record):
    host: str
    router_ids: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class RoutersForHost(codec.Record):
    host: str
    routers: tuple[specs.RouterSpec, ...] = ()


@dataclasses.dataclass(frozen=True)
class GetSecurityGroupRulesForPorts(codec.Record):
    port_ids: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class SecurityGroupRules(codec.Record):
    ports: tuple[specs.PortSecurity, ...] = ()
    groups: tuple[specs.SecurityGroupSpec, ...] = ()


@dataclasses.dataclass(frozen=True)
class GetL2Population(codec.Record):
    network_id: str


@dataclasses.dataclass(frozen=True)
class L2Population(codec.Record):
    network_id: str
    segments: tuple[specs.SegmentSpec, ...] = ()
    entries: tuple[specs.L2Entry, ...] = ()
    tunnel_endpoints: tuple[specs.TunnelEndpoint, ...] = ()


@dataclasses.dataclass(frozen=True)
class EnsureDhcpPort(codec.Record):
    host: str
    network_id: str


@dataclasses.dataclass(frozen=True)
class ReleaseDhcpPort(codec.Record):
    host: str
    network_id: str


@dataclasses.dataclass(frozen=True)
class DhcpPort(codec.Record):
    network_id: str
    port: specs.PortSpec | None = None


# --- reports from agents --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ReportPortStatus(codec.Record):
    """What an agent on ``host`` observed of its ports (recorded only if still bound there)."""

    host: str
    ports: tuple[specs.PortStatus, ...]


@dataclasses.dataclass(frozen=True)
class PortStatusAck(codec.Record):
    updated: tuple[str, ...] = ()
    # Ports that do not exist or are not bound to the reporting host: forget them.
    unknown: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Heartbeat(codec.Record):
    """An agent's periodic report (Neutron's report_state); registers it when new."""

    agent_type: str
    binary: str
    topic: str
    host: str
    availability_zone: str | None = None
    configurations: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # True on the first report after the agent started (sets started_at).
    start_flag: bool = False


# Heartbeat answers: the agent does a full resync when it hears "revived".
AGENT_NEW = "new"
AGENT_ALIVE = "alive"
AGENT_REVIVED = "revived"


@dataclasses.dataclass(frozen=True)
class HeartbeatAck(codec.Record):
    agent_id: str
    status: str
    admin_state_up: bool = True


@dataclasses.dataclass(frozen=True)
class Failure(codec.Record):
    """The answer to a request that failed on the serving side."""

    error_type: str
    message: str
