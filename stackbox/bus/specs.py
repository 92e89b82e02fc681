"""Desired state as agents receive it from the controller's RPC answers.

These are the contract between the networking server and the network agents:
what a host must make true for a port, a network, a router or a security group.
They carry what the data plane needs and nothing of the API's presentation
(no policy, no links). Fields are added with defaults only (see ``codec``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from stackbox.bus import codec


@dataclasses.dataclass(frozen=True)
class FixedIP(codec.Record):
    subnet_id: str
    ip_address: str


@dataclasses.dataclass(frozen=True)
class AddressPair(codec.Record):
    mac_address: str
    ip_address: str


@dataclasses.dataclass(frozen=True)
class DhcpOption(codec.Record):
    opt_name: str
    opt_value: str
    ip_version: int = 4


@dataclasses.dataclass(frozen=True)
class SegmentSpec(codec.Record):
    """One ML2 segment: how a network is carried between hosts."""

    network_type: str
    physical_network: str | None = None
    segmentation_id: int | None = None


@dataclasses.dataclass(frozen=True)
class PortSpec(codec.Record):
    """A port as the L2 agent of its host must wire it (Neutron's device details)."""

    id: str
    network_id: str
    mac_address: str
    admin_state_up: bool = True
    status: str = "DOWN"
    device_owner: str = ""
    device_id: str = ""
    host: str = ""
    fixed_ips: tuple[FixedIP, ...] = ()
    allowed_address_pairs: tuple[AddressPair, ...] = ()
    extra_dhcp_opts: tuple[DhcpOption, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    port_security_enabled: bool = True
    vnic_type: str = "normal"
    vif_type: str = "unbound"
    binding_profile: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    dns_name: str = ""
    mtu: int = 1500
    # The network's first segment (where the port is wired), for convenience.
    segment: SegmentSpec | None = None
    network_admin_state_up: bool = True
    revision_number: int = 0


@dataclasses.dataclass(frozen=True)
class HostRoute(codec.Record):
    destination: str
    nexthop: str


@dataclasses.dataclass(frozen=True)
class AllocationPool(codec.Record):
    start: str
    end: str


@dataclasses.dataclass(frozen=True)
class SubnetSpec(codec.Record):
    id: str
    network_id: str
    cidr: str
    ip_version: int
    gateway_ip: str | None = None
    enable_dhcp: bool = True
    dns_nameservers: tuple[str, ...] = ()
    host_routes: tuple[HostRoute, ...] = ()
    allocation_pools: tuple[AllocationPool, ...] = ()
    ipv6_ra_mode: str | None = None
    ipv6_address_mode: str | None = None


@dataclasses.dataclass(frozen=True)
class NetworkSpec(codec.Record):
    """A network with its subnets and ports: what DHCP serves and bridges carry."""

    id: str
    project_id: str
    name: str = ""
    admin_state_up: bool = True
    mtu: int = 1500
    external: bool = False
    port_security_enabled: bool = True
    dns_domain: str = ""
    segments: tuple[SegmentSpec, ...] = ()
    subnets: tuple[SubnetSpec, ...] = ()
    ports: tuple[PortSpec, ...] = ()
    revision_number: int = 0


@dataclasses.dataclass(frozen=True)
class RouterAddress(codec.Record):
    """One address of a router port, with the subnet it is on."""

    subnet_id: str
    ip_address: str
    cidr: str
    gateway_ip: str | None = None


@dataclasses.dataclass(frozen=True)
class RouterPortSpec(codec.Record):
    port_id: str
    network_id: str
    mac_address: str
    port_type: str
    addresses: tuple[RouterAddress, ...] = ()
    mtu: int = 1500
    segment: SegmentSpec | None = None
    admin_state_up: bool = True


@dataclasses.dataclass(frozen=True)
class FloatingIPSpec(codec.Record):
    id: str
    floating_ip_address: str
    floating_network_id: str
    fixed_ip_address: str | None = None
    fixed_port_id: str | None = None
    status: str = "DOWN"


@dataclasses.dataclass(frozen=True)
class PortForwardingSpec(codec.Record):
    id: str
    floatingip_id: str
    floating_ip_address: str
    protocol: str
    external_port: int
    internal_ip_address: str
    internal_port: int
    internal_port_id: str


@dataclasses.dataclass(frozen=True)
class RouterSpec(codec.Record):
    """A router as an L3 agent must build it: gateway, interfaces, routes, NAT."""

    id: str
    project_id: str
    name: str = ""
    admin_state_up: bool = True
    ha: bool = False
    distributed: bool = False
    enable_snat: bool = True
    gateway: RouterPortSpec | None = None
    interfaces: tuple[RouterPortSpec, ...] = ()
    routes: tuple[HostRoute, ...] = ()
    floating_ips: tuple[FloatingIPSpec, ...] = ()
    port_forwardings: tuple[PortForwardingSpec, ...] = ()
    revision_number: int = 0


@dataclasses.dataclass(frozen=True)
class RuleSpec(codec.Record):
    id: str
    direction: str
    ethertype: str = "IPv4"
    protocol: str | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None
    remote_address_group_id: str | None = None


@dataclasses.dataclass(frozen=True)
class SecurityGroupSpec(codec.Record):
    """A group's rules, and the addresses of its member ports (for remote-group rules)."""

    id: str
    stateful: bool = True
    rules: tuple[RuleSpec, ...] = ()
    member_ips: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class PortSecurity(codec.Record):
    """What a firewall needs of one port: its groups and the addresses it may use."""

    port_id: str
    mac_address: str
    port_security_enabled: bool = True
    security_group_ids: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    allowed_address_pairs: tuple[AddressPair, ...] = ()


@dataclasses.dataclass(frozen=True)
class L2Entry(codec.Record):
    """A port somewhere on a network: which host holds which MAC and addresses."""

    port_id: str
    host: str
    mac_address: str
    ip_addresses: tuple[str, ...] = ()
    device_owner: str = ""
    active: bool = False


@dataclasses.dataclass(frozen=True)
class TunnelEndpoint(codec.Record):
    """A host's tunnel address (from its L2 agent's ``tunneling_ip``)."""

    host: str
    ip_address: str


@dataclasses.dataclass(frozen=True)
class PortStatus(codec.Record):
    """What an agent observed of one port: ``ACTIVE``, ``DOWN``, ``BUILD`` or ``ERROR``."""

    port_id: str
    status: str
