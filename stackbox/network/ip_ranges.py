"""Address arithmetic of subnets: allocation pools, gateway rules, EUI-64 addresses.

Pure functions on CIDR and address strings (no database), with Neutron's rules
and error messages for the checks subnets and IPAM share.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from typing import Any

from stackbox.network import attributes, errors

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ROUTER_INTERFACE_OWNERS = (
    "network:router_interface",
    "network:ha_router_replicated_interface",
    "network:router_interface_distributed",
)
ROUTER_INTERFACE_OWNERS_SNAT = (*ROUTER_INTERFACE_OWNERS, "network:router_centralized_snat")
ROUTER_PORT_OWNERS = (*ROUTER_INTERFACE_OWNERS_SNAT, "network:router_gateway")
AUTO_ADDRESS_MODES = ("slaac", "dhcpv6-stateless")
IPV6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")


def text(version: int, value: int) -> str:
    """The canonical text of address ``value`` (IPv6 compressed, lower case)."""
    return str(ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value))


def canonical(ip: str) -> str:
    return str(ipaddress.ip_address(ip))


def number(ip: str) -> int:
    """An address as an integer; the socket module is ~10x faster than ipaddress, and
    IPAM turns every allocated address of a subnet into a number on each allocation."""
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, ip), "big")
    except OSError:
        try:
            return int.from_bytes(socket.inet_pton(socket.AF_INET6, ip), "big")
        except OSError:
            raise ValueError(f"{ip!r} is not an IP address") from None


def version_of(ip_or_cidr: str) -> int:
    if "/" in ip_or_cidr:
        return ipaddress.ip_network(ip_or_cidr, strict=False).version
    return ipaddress.ip_address(ip_or_cidr).version


def network_of(cidr: str) -> IPNetwork:
    return ipaddress.ip_network(cidr, strict=False)


def first_host(cidr: str) -> str:
    return text(network_of(cidr).version, int(network_of(cidr).network_address) + 1)


@dataclasses.dataclass(frozen=True, order=True)
class Range:
    """An inclusive range of addresses, as integers (an allocation pool)."""

    version: int
    first: int
    last: int

    @classmethod
    def of(cls, start: str, end: str) -> Range:
        low, high = ipaddress.ip_address(start), ipaddress.ip_address(end)
        return cls(low.version, int(low), int(high))

    @property
    def start(self) -> str:
        return text(self.version, self.first)

    @property
    def end(self) -> str:
        return text(self.version, self.last)

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def holds(self, ip: str) -> bool:
        value = ipaddress.ip_address(ip)
        return value.version == self.version and self.first <= int(value) <= self.last

    def overlaps(self, other: Range) -> bool:
        return (
            self.version == other.version
            and self.first <= other.last
            and other.first <= (self.last)
        )

    def as_dict(self) -> dict[str, str]:
        return {"start": self.start, "end": self.end}

    def __str__(self) -> str:
        return f"{self.start}-{self.end}"


def usable(cidr: str) -> Range:
    """Where pools may lie: the subnet less its network address (and IPv4 broadcast)."""
    net = network_of(cidr)
    first, last = int(net.network_address), int(net.broadcast_address)
    if net.version == 6 or net.prefixlen <= 30:
        first += 1
    if net.version == 4 and net.prefixlen <= 30:
        last -= 1
    return Range(net.version, first, last)


def generate_pools(cidr: str, gateway_ip: str | None) -> list[Range]:
    """The pools of a subnet created without any: the usable range less the gateway."""
    net = network_of(cidr)
    if net.num_addresses == 1:
        value = int(net.network_address)
        return [Range(net.version, value, value)]
    bounds = usable(cidr)
    if not gateway_ip or not bounds.holds(gateway_ip):
        return [bounds]
    gateway = number(gateway_ip)
    pools = []
    if gateway > bounds.first:
        pools.append(Range(bounds.version, bounds.first, gateway - 1))
    if gateway < bounds.last:
        pools.append(Range(bounds.version, gateway + 1, bounds.last))
    return pools


def parse_pools(pools: Iterable[dict[str, Any]]) -> list[Range]:
    """Pools from a request (400 InvalidAllocationPool for backwards or mixed ones)."""
    result = []
    for pool in pools:
        try:
            parsed = Range.of(pool["start"], pool["end"])
            if version_of(pool["end"]) != parsed.version or parsed.first > parsed.last:
                raise ValueError(pool)
        except (ValueError, TypeError, KeyError):
            raise errors.bad_request(
                f"The allocation pool {pool} is not valid.", kind="InvalidAllocationPool"
            ) from None
        result.append(parsed)
    return result


def validate_pools(pools: Sequence[Range], cidr: str) -> None:
    """Pools inside the subnet's usable range and not overlapping (Neutron's errors)."""
    bounds = usable(cidr)
    for pool in pools:
        if pool.version != bounds.version:
            raise errors.bad_request(
                f"The allocation pool {pool} is not valid.", kind="InvalidAllocationPool"
            )
        if pool.first < bounds.first or pool.last > bounds.last:
            raise errors.bad_request(
                f"The allocation pool {pool} spans beyond the subnet cidr {cidr}.",
                kind="OutOfBoundsAllocationPool",
            )
    for i, left in enumerate(pools):
        for right in pools[i + 1 :]:
            if left.overlaps(right):
                raise errors.conflict(
                    "OverlappingAllocationPools",
                    f"Found overlapping allocation pools: {left} {right} for subnet {cidr}.",
                )


def check_gateway_outside_pools(gateway_ip: str, pools: Iterable[Range]) -> None:
    for pool in pools:
        if pool.holds(gateway_ip):
            raise errors.conflict(
                "GatewayConflictWithAllocationPools",
                f"Gateway ip {gateway_ip} conflicts with allocation pool {pool}.",
            )


def gateway_invalid(cidr: str, gateway_ip: str) -> bool:
    """An IPv4 gateway may not be the subnet's network or broadcast address (one outside
    the subnet is allowed: it is then on-link)."""
    net, gateway = network_of(cidr), ipaddress.ip_address(gateway_ip)
    return (
        net.version == 4
        and gateway.version == 4
        and gateway in net
        and gateway in (net.network_address, net.broadcast_address)
    )


def valid_on_subnet(cidr: str, ip: str, device_owner: str = "") -> bool:
    """Neutron's check_subnet_ip: inside the subnet and not its IPv4 network or broadcast
    address; only routers (or an unknown owner) may hold an IPv6 subnet's first address."""
    net, value = network_of(cidr), ipaddress.ip_address(ip)
    if value.version != net.version or value not in net:
        return False
    if net.version == 4:
        return value not in (net.network_address, net.broadcast_address)
    return device_owner in (*ROUTER_PORT_OWNERS, "") or value != net.network_address


def is_auto_address(ra_mode: str | None, address_mode: str | None) -> bool:
    """SLAAC or DHCPv6-stateless: hosts build their address from the prefix and MAC."""
    return address_mode in AUTO_ADDRESS_MODES or ra_mode in AUTO_ADDRESS_MODES


def eui64(cidr: str, mac: str) -> str:
    """The modified EUI-64 address (RFC 4291) of ``mac`` in the /64 ``cidr``."""
    octets = [int(part, 16) for part in mac.replace("-", ":").split(":")]
    octets[0] ^= 0x02
    interface = int.from_bytes(bytes([*octets[:3], 0xFF, 0xFE, *octets[3:]]))
    return text(6, int(network_of(cidr).network_address) | interface)


def is_eui64(ip: str) -> bool:
    value = ipaddress.ip_address(ip)
    return value.version == 6 and (int(value) >> 24) & 0xFFFF == 0xFFFE


# --- prefix sets (subnet pools) -------------------------------------------------------------


def collapse(cidrs: Iterable[str]) -> list[str]:
    """The smallest list of CIDRs covering ``cidrs`` (one IP version)."""
    nets = [network_of(c) for c in cidrs]
    v4 = [n for n in nets if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in nets if isinstance(n, ipaddress.IPv6Network)]
    return [str(n) for n in (*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6))]


def subtract(prefixes: Iterable[str], taken: Iterable[str]) -> list[IPNetwork]:
    """``prefixes`` less every network in ``taken``, as disjoint networks."""
    free: list[IPNetwork] = [network_of(p) for p in collapse(prefixes)]
    for cidr in taken:
        used = network_of(cidr)
        remaining: list[IPNetwork] = []
        for block in free:
            if block.version != used.version or not block.overlaps(used):
                remaining.append(block)
            elif block.prefixlen < used.prefixlen:
                remaining.extend(block.address_exclude(used))  # type: ignore[arg-type]
        free = remaining
    return free


def overlaps(left: Iterable[str], right: Iterable[str]) -> bool:
    nets = [network_of(c) for c in right]
    return any(
        a.version == b.version and a.overlaps(b)
        for a in (network_of(c) for c in left)
        for b in nets
    )


def contains(block: IPNetwork, net: IPNetwork) -> bool:
    return (
        block.version == net.version
        and block.prefixlen <= net.prefixlen
        and (int(net.network_address) & int(block.netmask)) == int(block.network_address)
    )


def covers(outer: Iterable[str], inner: Iterable[str]) -> bool:
    """Every address of ``inner`` is in ``outer``."""
    return not subtract(inner, outer)


# --- request validators (attributes.Attr.validate) ------------------------------------------


def _invalid(message: str) -> Exception:
    return attributes.Invalid(message)


def ip_version(value: Any) -> int:
    try:
        number_ = int(value)
    except (TypeError, ValueError):
        raise _invalid(f"'{value}' is not an integer") from None
    if isinstance(value, bool) or number_ not in (4, 6):
        raise _invalid(f"'{value}' is not in [4, 6]")
    return number_


def subnet_cidr(value: Any) -> str:
    """A subnet in CIDR notation (host bits allowed, as Neutron), as its network."""
    if not isinstance(value, str) or "/" not in value or value != value.strip():
        raise _invalid(f"'{value}' is not a valid IP subnet")
    try:
        interface = ipaddress.ip_interface(value)
        if interface.version == 4 and str(interface) != value:
            raise ValueError(value)
    except ValueError:
        raise _invalid(f"'{value}' is not a valid IP subnet") from None
    return str(interface.network)


def subnet_cidr_or_none(value: Any) -> str | None:
    return None if value is None else subnet_cidr(value)


def subnet_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise _invalid(f"'{value}' is not a list")
    return [subnet_cidr(item) for item in value]


def non_negative(value: Any) -> int:
    if isinstance(value, bool):
        raise _invalid(f"'{value}' is not an integer")
    try:
        result = int(value)
    except (TypeError, ValueError):
        raise _invalid(f"'{value}' is not an integer") from None
    if result < 0:
        raise _invalid(f"'{value}' should be non-negative")
    return result
