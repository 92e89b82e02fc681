"""DHCP for a network on this host: the ``qdhcp-<network>`` namespace, the DHCP
port's veth (``tap<port11>`` on the network's bridge, ``ns-<port11>`` inside with
the port's MAC and addresses) and dnsmasq handing out each port's fixed IPv4
address as a static lease, with the subnet's gateway, DNS servers, host routes
and MTU, and the port's extra DHCP options.

IPv6 (RA, DHCPv6) and DNS answers are not served yet.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from stackbox.agent.network import l2
from stackbox.bus import specs
from stackbox.linux import dnsmasq, links, netns

NAMESPACE_PREFIX = "qdhcp-"


def namespace(network_id: str) -> str:
    return f"{NAMESPACE_PREFIX}{network_id}"


def inner_name(port_id: str) -> str:
    return f"ns-{port_id[:11]}"


def dhcp_subnets(network: specs.NetworkSpec) -> list[specs.SubnetSpec]:
    return [s for s in network.subnets if s.enable_dhcp and s.ip_version == 4]


def own_port(network: specs.NetworkSpec, host: str) -> specs.PortSpec | None:
    """This host's DHCP port of ``network``, if it has an address on every DHCP subnet."""
    wanted = {s.id for s in dhcp_subnets(network)}
    for port in network.ports:
        mine = port.device_owner == "network:dhcp" and port.host == host
        if mine and wanted <= {f.subnet_id for f in port.fixed_ips}:
            return port
    return None


def hostname(ip: str) -> str:
    return "host-" + ip.replace(".", "-")


def served(
    network: specs.NetworkSpec, port: specs.PortSpec, directory: Path, lease_seconds: int
) -> dnsmasq.Served:
    """What dnsmasq must serve for ``network`` from its DHCP ``port``."""
    subnets = {s.id: s for s in dhcp_subnets(network)}
    ranges = []
    opts = []
    for subnet in subnets.values():
        net = ipaddress.ip_network(subnet.cidr)
        tag = f"subnet-{subnet.id}"
        ranges.append(f"set:{tag},{net.network_address},static,{net.netmask},{lease_seconds}s")
        routes = [(r.destination, r.nexthop) for r in subnet.host_routes]
        if subnet.gateway_ip:
            opts.append(f"tag:{tag},option:router,{subnet.gateway_ip}")
            if routes:
                # RFC 3442 clients ignore option 3 when option 121 comes: repeat the default.
                routes.append(("0.0.0.0/0", subnet.gateway_ip))
        else:
            opts.append(f"tag:{tag},option:router")
        if routes:
            flat = ",".join(f"{d},{n}" for d, n in routes)
            opts.append(f"tag:{tag},option:classless-static-route,{flat}")
        if subnet.dns_nameservers:
            opts.append(f"tag:{tag},option:dns-server,{','.join(subnet.dns_nameservers)}")
        opts.append(f"tag:{tag},option:mtu,{network.mtu}")
    hosts = []
    for each in network.ports:
        for fixed in each.fixed_ips:
            if fixed.subnet_id in subnets:
                name = each.dns_name or hostname(fixed.ip_address)
                hosts.append(f"{each.mac_address},set:port-{each.id},{fixed.ip_address},{name}")
        for opt in each.extra_dhcp_opts:
            if opt.ip_version == 4:
                opts.append(f"tag:port-{each.id},option:{opt.opt_name},{opt.opt_value}")
    return dnsmasq.Served(
        namespace=namespace(network.id),
        interface=inner_name(port.id),
        directory=directory,
        ranges=tuple(ranges),
        hosts="".join(f"{line}\n" for line in sorted(hosts)),
        opts="".join(f"{line}\n" for line in opts),
    )


def ensure(
    network: specs.NetworkSpec, port: specs.PortSpec, directory: Path, lease_seconds: int
) -> None:
    """Make DHCP for ``network`` run here from ``port`` (idempotent)."""
    ns = namespace(network.id)
    bridge = l2.bridge_name(network.id)
    outer, inner = l2.tap_name(port.id), inner_name(port.id)
    links.ensure_bridge(bridge, network.mtu)
    netns.ensure_namespace(ns)
    links.ensure_veth(outer, inner, ns, port.mac_address, network.mtu)
    links.ensure_plugged(outer, bridge, network.mtu)
    subnets = {s.id: s for s in dhcp_subnets(network)}
    links.ensure_addresses(
        inner,
        [
            f"{f.ip_address}/{ipaddress.ip_network(subnets[f.subnet_id].cidr).prefixlen}"
            for f in port.fixed_ips
            if f.subnet_id in subnets
        ],
        ns,
    )
    dnsmasq.ensure_dnsmasq(served(network, port, directory, lease_seconds))


def remove(network_id: str, directory: Path, port_id: str | None) -> None:
    """Stop serving ``network_id`` here: dnsmasq, the namespace, the veth, the bridge if empty."""
    dnsmasq.remove_dnsmasq(directory)
    if port_id is not None:
        links.remove_link(l2.tap_name(port_id))
    netns.remove_namespace(namespace(network_id))
    l2.remove_bridge_if_empty(network_id)
