"""Networking tables: the Neutron resources, their ML2 segments and allocations,
IPAM, agents, and the outbox of nudges for agents.

Uniqueness that concurrency must never break is a database constraint:
one address per subnet (``ip_allocation``), one segment id per type and
physical network (``segment_allocation``), one MAC per network.
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from stackbox.db.base import ID, Base, JSONText, utcnow

UUID = String(36)


class Standard:
    """Neutron's standard attributes, on every resource table."""

    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    project_id: Mapped[str] = mapped_column(ID, index=True, default="")
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    revision_number: Mapped[int] = mapped_column(Integer, default=0)


class Network(Standard, Base):
    __tablename__ = "net_network"
    name: Mapped[str] = mapped_column(String(255), default="")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    mtu: Mapped[int] = mapped_column(Integer, default=1450)
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # router:external; shared comes from RBAC policies (access_as_shared to '*').
    external: Mapped[bool] = mapped_column(Boolean, default=False)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    availability_zone_hints: Mapped[list[str]] = mapped_column(JSONText, default=list)
    dns_domain: Mapped[str] = mapped_column(String(255), default="")
    vlan_transparent: Mapped[bool | None] = mapped_column(Boolean, nullable=True)


class Segment(Base):
    """One ML2 segment of a network (most networks have one)."""

    __tablename__ = "net_segment"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    network_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_network.id", ondelete="CASCADE"), index=True
    )
    network_type: Mapped[str] = mapped_column(String(32))
    physical_network: Mapped[str | None] = mapped_column(String(64), nullable=True)
    segmentation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    segment_index: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    revision_number: Mapped[int] = mapped_column(Integer, default=0)


class SegmentAllocation(Base):
    """A taken segmentation id (VNI, VLAN, GRE key): the primary key makes it unique."""

    __tablename__ = "net_segment_allocation"
    network_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    physical_network: Mapped[str] = mapped_column(String(64), primary_key=True, default="")
    segmentation_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    segment_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_segment.id", ondelete="CASCADE"), index=True
    )


class Subnet(Standard, Base):
    __tablename__ = "net_subnet"
    name: Mapped[str] = mapped_column(String(255), default="")
    network_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_network.id", ondelete="CASCADE"), index=True
    )
    ip_version: Mapped[int] = mapped_column(Integer)
    cidr: Mapped[str] = mapped_column(String(64))
    gateway_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    enable_dhcp: Mapped[bool] = mapped_column(Boolean, default=True)
    ipv6_ra_mode: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ipv6_address_mode: Mapped[str | None] = mapped_column(String(32), nullable=True)
    subnetpool_id: Mapped[str | None] = mapped_column(UUID, nullable=True, index=True)
    segment_id: Mapped[str | None] = mapped_column(UUID, nullable=True)
    dns_publish_fixed_ip: Mapped[bool] = mapped_column(Boolean, default=False)


class AllocationPool(Base):
    __tablename__ = "net_allocation_pool"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subnet_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_subnet.id", ondelete="CASCADE"), index=True
    )
    first_ip: Mapped[str] = mapped_column(String(64))
    last_ip: Mapped[str] = mapped_column(String(64))


class DnsNameserver(Base):
    __tablename__ = "net_dns_nameserver"
    subnet_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_subnet.id", ondelete="CASCADE"), primary_key=True
    )
    address: Mapped[str] = mapped_column(String(128), primary_key=True)
    order: Mapped[int] = mapped_column(Integer, default=0)


class HostRoute(Base):
    __tablename__ = "net_host_route"
    subnet_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_subnet.id", ondelete="CASCADE"), primary_key=True
    )
    destination: Mapped[str] = mapped_column(String(64), primary_key=True)
    nexthop: Mapped[str] = mapped_column(String(64), primary_key=True)


class SubnetServiceType(Base):
    __tablename__ = "net_subnet_service_type"
    subnet_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_subnet.id", ondelete="CASCADE"), primary_key=True
    )
    service_type: Mapped[str] = mapped_column(String(255), primary_key=True)


class SubnetPool(Standard, Base):
    __tablename__ = "net_subnetpool"
    name: Mapped[str] = mapped_column(String(255), default="")
    ip_version: Mapped[int] = mapped_column(Integer)
    default_prefixlen: Mapped[int] = mapped_column(Integer)
    min_prefixlen: Mapped[int] = mapped_column(Integer)
    max_prefixlen: Mapped[int] = mapped_column(Integer)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    default_quota: Mapped[int | None] = mapped_column(Integer, nullable=True)
    address_scope_id: Mapped[str | None] = mapped_column(UUID, nullable=True, index=True)


class SubnetPoolPrefix(Base):
    __tablename__ = "net_subnetpool_prefix"
    subnetpool_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_subnetpool.id", ondelete="CASCADE"), primary_key=True
    )
    cidr: Mapped[str] = mapped_column(String(64), primary_key=True)


class AddressScope(Standard, Base):
    __tablename__ = "net_address_scope"
    name: Mapped[str] = mapped_column(String(255), default="")
    ip_version: Mapped[int] = mapped_column(Integer)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)


class Port(Standard, Base):
    __tablename__ = "net_port"
    __table_args__ = (UniqueConstraint("network_id", "mac_address"),)
    name: Mapped[str] = mapped_column(String(255), default="")
    network_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_network.id", ondelete="CASCADE"), index=True
    )
    mac_address: Mapped[str] = mapped_column(String(32))
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")
    device_id: Mapped[str] = mapped_column(String(255), default="", index=True)
    device_owner: Mapped[str] = mapped_column(String(255), default="", index=True)
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    dns_name: Mapped[str] = mapped_column(String(255), default="")
    binding_host_id: Mapped[str] = mapped_column(String(255), default="", index=True)
    binding_vnic_type: Mapped[str] = mapped_column(String(64), default="normal")
    binding_vif_type: Mapped[str] = mapped_column(String(64), default="unbound")
    binding_vif_details: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)
    binding_profile: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)
    propagate_uplink_status: Mapped[bool] = mapped_column(Boolean, default=False)


class IPAllocation(Base):
    """An address held by a port: unique per subnet, whatever the concurrency."""

    __tablename__ = "net_ip_allocation"
    subnet_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_subnet.id", ondelete="CASCADE"), primary_key=True
    )
    ip_address: Mapped[str] = mapped_column(String(64), primary_key=True)
    port_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_port.id", ondelete="CASCADE"), index=True
    )
    network_id: Mapped[str] = mapped_column(UUID, index=True)


class AllowedAddressPair(Base):
    __tablename__ = "net_allowed_address_pair"
    port_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_port.id", ondelete="CASCADE"), primary_key=True
    )
    mac_address: Mapped[str] = mapped_column(String(32), primary_key=True)
    ip_address: Mapped[str] = mapped_column(String(64), primary_key=True)


class ExtraDhcpOpt(Base):
    __tablename__ = "net_extra_dhcp_opt"
    port_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_port.id", ondelete="CASCADE"), primary_key=True
    )
    opt_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    ip_version: Mapped[int] = mapped_column(Integer, primary_key=True, default=4)
    opt_value: Mapped[str] = mapped_column(String(255))


class SecurityGroup(Standard, Base):
    __tablename__ = "net_security_group"
    name: Mapped[str] = mapped_column(String(255), default="")
    stateful: Mapped[bool] = mapped_column(Boolean, default=True)


class DefaultSecurityGroup(Base):
    """Each project's one `default` group (the primary key stops a second one)."""

    __tablename__ = "net_default_security_group"
    project_id: Mapped[str] = mapped_column(ID, primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_security_group.id", ondelete="CASCADE")
    )


class SecurityGroupRule(Standard, Base):
    __tablename__ = "net_security_group_rule"
    security_group_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_security_group.id", ondelete="CASCADE"), index=True
    )
    direction: Mapped[str] = mapped_column(String(8))
    ethertype: Mapped[str] = mapped_column(String(8), default="IPv4")
    protocol: Mapped[str | None] = mapped_column(String(40), nullable=True)
    port_range_min: Mapped[int | None] = mapped_column(Integer, nullable=True)
    port_range_max: Mapped[int | None] = mapped_column(Integer, nullable=True)
    remote_ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    remote_group_id: Mapped[str | None] = mapped_column(UUID, nullable=True, index=True)
    remote_address_group_id: Mapped[str | None] = mapped_column(UUID, nullable=True)


class PortSecurityGroup(Base):
    __tablename__ = "net_port_security_group"
    port_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_port.id", ondelete="CASCADE"), primary_key=True
    )
    security_group_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_security_group.id"), primary_key=True, index=True
    )


class Router(Standard, Base):
    __tablename__ = "net_router"
    name: Mapped[str] = mapped_column(String(255), default="")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    gw_port_id: Mapped[str | None] = mapped_column(UUID, nullable=True)
    enable_snat: Mapped[bool] = mapped_column(Boolean, default=True)
    distributed: Mapped[bool] = mapped_column(Boolean, default=False)
    ha: Mapped[bool] = mapped_column(Boolean, default=False)
    availability_zone_hints: Mapped[list[str]] = mapped_column(JSONText, default=list)


class RouterPort(Base):
    __tablename__ = "net_router_port"
    router_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_router.id", ondelete="CASCADE"), primary_key=True
    )
    port_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_port.id", ondelete="CASCADE"), primary_key=True
    )
    port_type: Mapped[str] = mapped_column(String(255))


class RouterRoute(Base):
    __tablename__ = "net_router_route"
    router_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_router.id", ondelete="CASCADE"), primary_key=True
    )
    destination: Mapped[str] = mapped_column(String(64), primary_key=True)
    nexthop: Mapped[str] = mapped_column(String(64), primary_key=True)


class FloatingIP(Standard, Base):
    __tablename__ = "net_floatingip"
    # One floating IP per fixed address and external network, whatever the concurrency
    # (unassociated ones hold NULLs, which never collide).
    __table_args__ = (UniqueConstraint("floating_network_id", "fixed_port_id", "fixed_ip_address"),)
    floating_ip_address: Mapped[str] = mapped_column(String(64))
    floating_network_id: Mapped[str] = mapped_column(UUID, index=True)
    floating_port_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_port.id", ondelete="CASCADE"), index=True
    )
    fixed_port_id: Mapped[str | None] = mapped_column(UUID, nullable=True, index=True)
    fixed_ip_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    router_id: Mapped[str | None] = mapped_column(UUID, nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")
    dns_name: Mapped[str] = mapped_column(String(255), default="")
    dns_domain: Mapped[str] = mapped_column(String(255), default="")


class PortForwarding(Base):
    __tablename__ = "net_port_forwarding"
    __table_args__ = (UniqueConstraint("floatingip_id", "external_port", "protocol"),)
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    floatingip_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_floatingip.id", ondelete="CASCADE"), index=True
    )
    internal_port_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_port.id", ondelete="CASCADE"), index=True
    )
    internal_ip_address: Mapped[str] = mapped_column(String(64))
    internal_port: Mapped[int] = mapped_column(Integer)
    external_port: Mapped[int] = mapped_column(Integer)
    protocol: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(String(255), default="")


class RbacPolicy(Base):
    __tablename__ = "net_rbac_policy"
    __table_args__ = (UniqueConstraint("object_type", "object_id", "action", "target_project"),)
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    project_id: Mapped[str] = mapped_column(ID, index=True)
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(UUID, index=True)
    action: Mapped[str] = mapped_column(String(32))
    target_project: Mapped[str] = mapped_column(ID)


class Quota(Base):
    __tablename__ = "net_quota"
    project_id: Mapped[str] = mapped_column(ID, primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    limit: Mapped[int] = mapped_column(Integer)


class QuotaLock(Base):
    """One row per project that quota checks lock (``SELECT ... FOR UPDATE``), so that on
    PostgreSQL and MariaDB concurrent creates of one project count one after another."""

    __tablename__ = "net_quota_lock"
    project_id: Mapped[str] = mapped_column(ID, primary_key=True)


class Tag(Base):
    __tablename__ = "net_tag"
    resource_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    resource_id: Mapped[str] = mapped_column(UUID, primary_key=True)
    tag: Mapped[str] = mapped_column(String(255), primary_key=True)


class Agent(Base):
    """An agent known from its heartbeats (or registered by the server: the fake agent)."""

    __tablename__ = "net_agent"
    __table_args__ = (UniqueConstraint("agent_type", "host"),)
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    agent_type: Mapped[str] = mapped_column(String(255))
    binary: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(255))
    host: Mapped[str] = mapped_column(String(255))
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    heartbeat_timestamp: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    configurations: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)
    resources_synced: Mapped[bool | None] = mapped_column(Boolean, nullable=True)


class NetworkDhcpAgent(Base):
    __tablename__ = "net_network_dhcp_agent"
    network_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_network.id", ondelete="CASCADE"), primary_key=True
    )
    agent_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_agent.id", ondelete="CASCADE"), primary_key=True
    )


class RouterL3Agent(Base):
    __tablename__ = "net_router_l3_agent"
    router_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_router.id", ondelete="CASCADE"), primary_key=True
    )
    agent_id: Mapped[str] = mapped_column(
        UUID, ForeignKey("net_agent.id", ondelete="CASCADE"), primary_key=True
    )


class Outbox(Base):
    """A nudge for agents, written in the transaction of the change it announces.

    The relay publishes it on the bus after commit and deletes it, so no nudge is
    lost to a crash between commit and publish, and none is sent for a rollback.
    """

    __tablename__ = "net_outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(255))
    message: Mapped[dict[str, Any]] = mapped_column(JSONText)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
