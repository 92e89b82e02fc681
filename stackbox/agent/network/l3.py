"""Routers on this host: the ``qrouter-<router>`` namespace, one veth per router
port (``qr-<port11>`` inside for an interface, ``qg-<port11>`` for the gateway;
``tap<port11>`` outside on the network's bridge), forwarding on, the extra routes,
and NAT in one nftables table replaced atomically: floating IPs (1:1, their
addresses on the gateway device so the router answers ARP for them) and SNAT of
the internal subnets to the gateway address when ``enable_snat``.

Not done yet: port forwardings, HA (keepalived), DVR, IPv6 (RA), the metadata proxy.
"""

from __future__ import annotations

import ipaddress

from stackbox.agent.network import l2
from stackbox.bus import specs
from stackbox.linux import links, netns, nft, run

NAMESPACE_PREFIX = "qrouter-"
TABLE = "stackbox_router"


def namespace(router_id: str) -> str:
    return f"{NAMESPACE_PREFIX}{router_id}"


def inner_name(port: specs.RouterPortSpec, gateway: bool) -> str:
    return f"{'qg' if gateway else 'qr'}-{port.port_id[:11]}"


def _v4(addresses: tuple[specs.RouterAddress, ...]) -> list[specs.RouterAddress]:
    return [a for a in addresses if ipaddress.ip_address(a.ip_address).version == 4]


def _with_prefix(address: specs.RouterAddress) -> str:
    return f"{address.ip_address}/{ipaddress.ip_network(address.cidr).prefixlen}"


def nat_rules(router: specs.RouterSpec) -> str:
    """The router's NAT as an nft table (empty chains without a gateway)."""
    pre: list[str] = []
    post: list[str] = []
    gateway = router.gateway
    if gateway is not None:
        qg = inner_name(gateway, True)
        for fip in router.floating_ips:
            if fip.fixed_ip_address:
                pre.append(f"ip daddr {fip.floating_ip_address} dnat to {fip.fixed_ip_address}")
                post.append(
                    f'ip saddr {fip.fixed_ip_address} oifname "{qg}" '
                    f"snat to {fip.floating_ip_address}"
                )
        outside = _v4(gateway.addresses)
        inside = [a.cidr for port in router.interfaces for a in _v4(port.addresses)]
        if router.enable_snat and outside and inside:
            post.append(
                f'oifname "{qg}" ip saddr {{ {", ".join(sorted(set(inside)))} }} '
                f"snat to {outside[0].ip_address}"
            )
    return nft.table(
        "ip",
        TABLE,
        {
            "prerouting": ("type nat hook prerouting priority dstnat; policy accept;", pre),
            "output": ("type nat hook output priority -100; policy accept;", pre),
            "postrouting": ("type nat hook postrouting priority srcnat; policy accept;", post),
        },
    )


def _plug(ns: str, port: specs.RouterPortSpec, gateway: bool, extra: list[str]) -> str:
    inner = inner_name(port, gateway)
    outer = l2.tap_name(port.port_id)
    bridge = l2.bridge_name(port.network_id)
    links.ensure_bridge(bridge, port.mtu)
    links.ensure_veth(outer, inner, ns, port.mac_address, port.mtu)
    links.ensure_plugged(outer, bridge, port.mtu)
    links.ensure_addresses(inner, [_with_prefix(a) for a in _v4(port.addresses)] + extra, ns)
    return inner


def ensure(router: specs.RouterSpec) -> None:
    """Make the router run here as ``router`` says (idempotent)."""
    ns = namespace(router.id)
    netns.ensure_namespace(ns)
    run.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
    wanted = set()
    for port in router.interfaces:
        wanted.add(_plug(ns, port, False, []))
    if router.gateway is not None:
        fips = [f"{f.floating_ip_address}/32" for f in router.floating_ips if f.fixed_ip_address]
        qg = _plug(ns, router.gateway, True, fips)
        wanted.add(qg)
        gateways = [a.gateway_ip for a in _v4(router.gateway.addresses) if a.gateway_ip]
        if gateways:
            run.ip("route", "replace", "default", "via", gateways[0], "dev", qg, ns=ns)
    for device in links.names(ns):
        if device.startswith(("qr-", "qg-")) and device not in wanted:
            links.remove_link(device, ns)
    for route in router.routes:
        run.ip("route", "replace", route.destination, "via", route.nexthop, ns=ns, check=False)
    nft.replace(nat_rules(router), ns=ns)


def remove(router_id: str, network_ids: set[str]) -> None:
    """Remove the router here, and the bridges it leaves empty."""
    ns = namespace(router_id)
    if netns.exists(ns):
        # Veths die with their namespace only some 100 ms later: delete them first, so
        # that the bridges are seen empty now.
        for device in links.names(ns):
            if device.startswith(("qr-", "qg-")):
                links.remove_link(f"{l2.TAP_PREFIX}{device[3:]}")
    netns.remove_namespace(ns)
    for network_id in network_ids:
        l2.remove_bridge_if_empty(network_id)
