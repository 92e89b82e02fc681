"""The desired state agents ask for, read from the database (the answers of the RPC
contract in ``bus.messages``). Read-only: each function runs in a read transaction.

Child rows are loaded in batches per request, never per port, so a resync of a
host with many ports costs a handful of queries.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox.bus import messages, specs
from stackbox.network import agent_state, ml2, models, port_bindings

CHUNK = 500


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _grouped(session: Session, model: Any, column: Any, ids: Sequence[str]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = defaultdict(list)
    for part in _chunks(ids):
        for row in session.scalars(select(model).where(column.in_(part))):
            found[getattr(row, column.key)].append(row)
    return found


def _first(segments: list[models.Segment] | None) -> models.Segment | None:
    """A network's first segment: where its ports are wired."""
    return segments[0] if segments else None


def _segment(segment: models.Segment | None) -> specs.SegmentSpec | None:
    if segment is None:
        return None
    return specs.SegmentSpec(
        segment.network_type, segment.physical_network, segment.segmentation_id
    )


# --- ports ----------------------------------------------------------------------------------


def port_specs(session: Session, ports: list[models.Port]) -> tuple[specs.PortSpec, ...]:
    ids = [p.id for p in ports]
    network_ids = sorted({p.network_id for p in ports})
    networks = {
        n.id: n
        for n in session.scalars(select(models.Network).where(models.Network.id.in_(network_ids)))
    }
    segments = ml2.segments_of(session, network_ids)
    ips = _grouped(session, models.IPAllocation, models.IPAllocation.port_id, ids)
    pairs = _grouped(session, models.AllowedAddressPair, models.AllowedAddressPair.port_id, ids)
    opts = _grouped(session, models.ExtraDhcpOpt, models.ExtraDhcpOpt.port_id, ids)
    groups = _grouped(session, models.PortSecurityGroup, models.PortSecurityGroup.port_id, ids)
    result = []
    for port in ports:
        network = networks.get(port.network_id)
        first = _first(segments.get(port.network_id))
        result.append(
            specs.PortSpec(
                id=port.id,
                network_id=port.network_id,
                mac_address=port.mac_address,
                admin_state_up=port.admin_state_up,
                status=port.status,
                device_owner=port.device_owner,
                device_id=port.device_id,
                host=port.binding_host_id,
                fixed_ips=tuple(
                    specs.FixedIP(a.subnet_id, a.ip_address)
                    for a in sorted(ips[port.id], key=lambda a: (a.subnet_id, a.ip_address))
                ),
                allowed_address_pairs=tuple(
                    specs.AddressPair(p.mac_address, p.ip_address) for p in pairs[port.id]
                ),
                extra_dhcp_opts=tuple(
                    specs.DhcpOption(o.opt_name, o.opt_value, o.ip_version) for o in opts[port.id]
                ),
                security_group_ids=tuple(sorted(g.security_group_id for g in groups[port.id])),
                port_security_enabled=port.port_security_enabled,
                vnic_type=port.binding_vnic_type,
                vif_type=port.binding_vif_type,
                binding_profile=dict(port.binding_profile or {}),
                dns_name=port.dns_name,
                mtu=network.mtu if network else 1500,
                segment=_segment(first),
                network_admin_state_up=network.admin_state_up if network else False,
                revision_number=port.revision_number,
            )
        )
    return tuple(result)


def ports_for_host(
    session: Session, host: str, port_ids: Sequence[str] = ()
) -> tuple[specs.PortSpec, ...]:
    """Ports bound to ``host`` (``binding:host_id``) whose binding succeeded."""
    query = select(models.Port).where(models.Port.binding_host_id == host)
    if port_ids:
        query = query.where(models.Port.id.in_(list(port_ids)))
    ports = [
        p for p in session.scalars(query.order_by(models.Port.id)) if port_bindings.is_bound(p)
    ]
    return port_specs(session, ports)


# --- networks -------------------------------------------------------------------------------


def subnet_specs(session: Session, subnets: list[models.Subnet]) -> tuple[specs.SubnetSpec, ...]:
    ids = [s.id for s in subnets]
    pools = _grouped(session, models.AllocationPool, models.AllocationPool.subnet_id, ids)
    servers = _grouped(session, models.DnsNameserver, models.DnsNameserver.subnet_id, ids)
    routes = _grouped(session, models.HostRoute, models.HostRoute.subnet_id, ids)
    return tuple(
        specs.SubnetSpec(
            id=s.id,
            network_id=s.network_id,
            cidr=s.cidr,
            ip_version=s.ip_version,
            gateway_ip=s.gateway_ip,
            enable_dhcp=s.enable_dhcp,
            dns_nameservers=tuple(d.address for d in sorted(servers[s.id], key=lambda d: d.order)),
            host_routes=tuple(specs.HostRoute(r.destination, r.nexthop) for r in routes[s.id]),
            allocation_pools=tuple(
                specs.AllocationPool(p.first_ip, p.last_ip)
                for p in sorted(pools[s.id], key=lambda p: p.id)
            ),
            ipv6_ra_mode=s.ipv6_ra_mode,
            ipv6_address_mode=s.ipv6_address_mode,
        )
        for s in subnets
    )


def network_spec(session: Session, network_id: str) -> specs.NetworkSpec | None:
    network = session.get(models.Network, network_id)
    if network is None:
        return None
    segments = ml2.segments_of(session, [network_id])[network_id]
    subnets = list(
        session.scalars(
            select(models.Subnet)
            .where(models.Subnet.network_id == network_id)
            .order_by(models.Subnet.created_at, models.Subnet.id)
        )
    )
    ports = list(
        session.scalars(
            select(models.Port).where(models.Port.network_id == network_id).order_by(models.Port.id)
        )
    )
    return specs.NetworkSpec(
        id=network.id,
        project_id=network.project_id,
        name=network.name,
        admin_state_up=network.admin_state_up,
        mtu=network.mtu,
        external=network.external,
        port_security_enabled=network.port_security_enabled,
        dns_domain=network.dns_domain or "",
        segments=tuple(s for s in (_segment(x) for x in segments) if s is not None),
        subnets=subnet_specs(session, subnets),
        ports=port_specs(session, ports),
        revision_number=network.revision_number,
    )


def dhcp_networks(session: Session, host: str) -> tuple[str, ...]:
    """Networks the DHCP agent of ``host`` serves: none while it is disabled."""
    agent = agent_state.find(session, agent_state.DHCP, host)
    if agent is None or not agent.admin_state_up:
        return ()
    return tuple(
        session.scalars(
            select(models.NetworkDhcpAgent.network_id)
            .join(models.Network, models.Network.id == models.NetworkDhcpAgent.network_id)
            .where(
                models.NetworkDhcpAgent.agent_id == agent.id,
                models.Network.admin_state_up.is_(True),
            )
            .order_by(models.NetworkDhcpAgent.network_id)
        )
    )


# --- routers --------------------------------------------------------------------------------


def _router_ports(
    session: Session, router_ports: list[models.RouterPort]
) -> dict[str, specs.RouterPortSpec]:
    ids = [rp.port_id for rp in router_ports]
    kinds = {rp.port_id: rp.port_type for rp in router_ports}
    ports = {
        p.id: p
        for part in _chunks(ids)
        for p in session.scalars(select(models.Port).where(models.Port.id.in_(part)))
    }
    allocations = _grouped(session, models.IPAllocation, models.IPAllocation.port_id, ids)
    subnet_ids = sorted({a.subnet_id for rows in allocations.values() for a in rows})
    subnets = {
        s.id: s
        for part in _chunks(subnet_ids)
        for s in session.scalars(select(models.Subnet).where(models.Subnet.id.in_(part)))
    }
    network_ids = sorted({p.network_id for p in ports.values()})
    networks = {
        n.id: n
        for n in session.scalars(select(models.Network).where(models.Network.id.in_(network_ids)))
    }
    segments = ml2.segments_of(session, network_ids)
    result = {}
    for port_id, port in ports.items():
        addresses = tuple(
            specs.RouterAddress(
                a.subnet_id,
                a.ip_address,
                subnets[a.subnet_id].cidr,
                subnets[a.subnet_id].gateway_ip,
            )
            for a in sorted(allocations[port_id], key=lambda a: (a.subnet_id, a.ip_address))
            if a.subnet_id in subnets
        )
        network = networks.get(port.network_id)
        result[port_id] = specs.RouterPortSpec(
            port_id=port.id,
            network_id=port.network_id,
            mac_address=port.mac_address,
            port_type=kinds[port_id],
            addresses=addresses,
            mtu=network.mtu if network else 1500,
            segment=_segment(_first(segments.get(port.network_id))),
            admin_state_up=port.admin_state_up,
        )
    return result


def router_specs(session: Session, routers: list[models.Router]) -> tuple[specs.RouterSpec, ...]:
    ids = [r.id for r in routers]
    links = _grouped(session, models.RouterPort, models.RouterPort.router_id, ids)
    ports = _router_ports(session, [rp for rows in links.values() for rp in rows])
    routes = _grouped(session, models.RouterRoute, models.RouterRoute.router_id, ids)
    fips = _grouped(session, models.FloatingIP, models.FloatingIP.router_id, ids)
    fip_ids = [f.id for rows in fips.values() for f in rows]
    forwardings = _grouped(
        session, models.PortForwarding, models.PortForwarding.floatingip_id, fip_ids
    )
    result = []
    for router in routers:
        gateway = ports.get(router.gw_port_id) if router.gw_port_id else None
        interfaces = tuple(
            ports[rp.port_id]
            for rp in sorted(links[router.id], key=lambda rp: rp.port_id)
            if rp.port_id in ports and rp.port_id != router.gw_port_id
        )
        floating = sorted(fips[router.id], key=lambda f: f.id)
        result.append(
            specs.RouterSpec(
                id=router.id,
                project_id=router.project_id,
                name=router.name,
                admin_state_up=router.admin_state_up,
                ha=router.ha,
                distributed=router.distributed,
                enable_snat=router.enable_snat,
                gateway=gateway,
                interfaces=interfaces,
                routes=tuple(specs.HostRoute(r.destination, r.nexthop) for r in routes[router.id]),
                floating_ips=tuple(
                    specs.FloatingIPSpec(
                        f.id,
                        f.floating_ip_address,
                        f.floating_network_id,
                        f.fixed_ip_address,
                        f.fixed_port_id,
                        f.status,
                    )
                    for f in floating
                ),
                port_forwardings=tuple(
                    specs.PortForwardingSpec(
                        pf.id,
                        f.id,
                        f.floating_ip_address,
                        pf.protocol,
                        pf.external_port,
                        pf.internal_ip_address,
                        pf.internal_port,
                        pf.internal_port_id,
                    )
                    for f in floating
                    for pf in sorted(forwardings[f.id], key=lambda pf: pf.id)
                ),
                revision_number=router.revision_number,
            )
        )
    return tuple(result)


def routers_for_host(
    session: Session, host: str, router_ids: Sequence[str] = ()
) -> tuple[specs.RouterSpec, ...]:
    """Routers scheduled to the L3 agent of ``host`` (none while it is disabled)."""
    agent = agent_state.find(session, agent_state.L3, host)
    if agent is None or not agent.admin_state_up:
        return ()
    query = (
        select(models.Router)
        .join(models.RouterL3Agent, models.RouterL3Agent.router_id == models.Router.id)
        .where(models.RouterL3Agent.agent_id == agent.id)
    )
    if router_ids:
        query = query.where(models.Router.id.in_(list(router_ids)))
    return router_specs(session, list(session.scalars(query.order_by(models.Router.id))))


# --- security groups ------------------------------------------------------------------------


def security_group_rules(session: Session, port_ids: Sequence[str]) -> messages.SecurityGroupRules:
    ids = list(port_ids)
    ports = [
        p
        for part in _chunks(ids)
        for p in session.scalars(select(models.Port).where(models.Port.id.in_(part)))
    ]
    ids = [p.id for p in ports]
    memberships = _grouped(session, models.PortSecurityGroup, models.PortSecurityGroup.port_id, ids)
    ips = _grouped(session, models.IPAllocation, models.IPAllocation.port_id, ids)
    pairs = _grouped(session, models.AllowedAddressPair, models.AllowedAddressPair.port_id, ids)
    group_ids = sorted({m.security_group_id for rows in memberships.values() for m in rows})
    rules = _grouped(
        session, models.SecurityGroupRule, models.SecurityGroupRule.security_group_id, group_ids
    )
    # Remote groups need their members' addresses too, whether or not they are asked about.
    referenced = sorted(
        set(group_ids)
        | {r.remote_group_id for rows in rules.values() for r in rows if r.remote_group_id}
    )
    groups = {
        g.id: g
        for part in _chunks(referenced)
        for g in session.scalars(
            select(models.SecurityGroup).where(models.SecurityGroup.id.in_(part))
        )
    }
    members = _member_ips(session, referenced)
    return messages.SecurityGroupRules(
        ports=tuple(
            specs.PortSecurity(
                port_id=p.id,
                mac_address=p.mac_address,
                port_security_enabled=p.port_security_enabled,
                security_group_ids=tuple(sorted(m.security_group_id for m in memberships[p.id])),
                ip_addresses=tuple(sorted(a.ip_address for a in ips[p.id])),
                allowed_address_pairs=tuple(
                    specs.AddressPair(a.mac_address, a.ip_address) for a in pairs[p.id]
                ),
            )
            for p in ports
        ),
        groups=tuple(
            specs.SecurityGroupSpec(
                id=group_id,
                stateful=groups[group_id].stateful,
                rules=tuple(
                    specs.RuleSpec(
                        r.id,
                        r.direction,
                        r.ethertype,
                        r.protocol,
                        r.port_range_min,
                        r.port_range_max,
                        r.remote_ip_prefix,
                        r.remote_group_id,
                        r.remote_address_group_id,
                    )
                    for r in sorted(rules[group_id], key=lambda r: r.id)
                ),
                member_ips=members.get(group_id, ()),
            )
            for group_id in referenced
            if group_id in groups
        ),
    )


def _member_ips(session: Session, group_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Addresses of each group's member ports: fixed IPs and allowed address pairs."""
    found: dict[str, set[str]] = defaultdict(set)
    for part in _chunks(list(group_ids)):
        for group_id, address in session.execute(
            select(models.PortSecurityGroup.security_group_id, models.IPAllocation.ip_address)
            .join(
                models.IPAllocation, models.IPAllocation.port_id == models.PortSecurityGroup.port_id
            )
            .where(models.PortSecurityGroup.security_group_id.in_(part))
        ):
            found[group_id].add(address)
        for group_id, address in session.execute(
            select(models.PortSecurityGroup.security_group_id, models.AllowedAddressPair.ip_address)
            .join(
                models.AllowedAddressPair,
                models.AllowedAddressPair.port_id == models.PortSecurityGroup.port_id,
            )
            .where(models.PortSecurityGroup.security_group_id.in_(part))
        ):
            found[group_id].add(address)
    return {
        group_id: tuple(sorted(addresses, key=_address_order))
        for group_id, addresses in found.items()
    }


def _address_order(text: str) -> tuple[int, str]:
    try:
        return (ipaddress.ip_network(text, strict=False).version, text)
    except ValueError:
        return (0, text)


# --- L2 population --------------------------------------------------------------------------


def l2_population(session: Session, network_id: str) -> messages.L2Population:
    """Which host holds which MAC and addresses on the network, and where the hosts'
    tunnels end (the tunneling_ip their live L2 agents report)."""
    segments = ml2.segments_of(session, [network_id])[network_id]
    ports = list(
        session.scalars(
            select(models.Port)
            .where(models.Port.network_id == network_id, models.Port.binding_host_id != "")
            .order_by(models.Port.id)
        )
    )
    ips = _grouped(session, models.IPAllocation, models.IPAllocation.port_id, [p.id for p in ports])
    hosts = {p.binding_host_id for p in ports}
    endpoints = []
    for agent in agent_state.of_type(session, agent_state.L2_LINUX_BRIDGE):
        tunnel_ip = (agent.configurations or {}).get("tunneling_ip")
        if agent.host in hosts and tunnel_ip and agent_state.is_alive(agent):
            endpoints.append(specs.TunnelEndpoint(agent.host, str(tunnel_ip)))
    return messages.L2Population(
        network_id=network_id,
        segments=tuple(s for s in (_segment(x) for x in segments) if s is not None),
        entries=tuple(
            specs.L2Entry(
                port_id=p.id,
                host=p.binding_host_id,
                mac_address=p.mac_address,
                ip_addresses=tuple(sorted(a.ip_address for a in ips[p.id])),
                device_owner=p.device_owner,
                active=p.status == "ACTIVE",
            )
            for p in ports
        ),
        tunnel_endpoints=tuple(sorted(endpoints, key=lambda e: e.host)),
    )
