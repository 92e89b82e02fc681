"""What a subnet request must satisfy: the attribute validators of its list fields,
and Neutron's checks of a subnet's addresses (``validate``), on create and update.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from stackbox.network import attributes as A
from stackbox.network import errors
from stackbox.network import ip_ranges as R

MAX_DNS_NAMESERVERS = 5
MAX_HOST_ROUTES = 20
SERVICE_TYPE_PREFIXES = ("network:", "neutron:", "compute:")


# --- attribute validators -------------------------------------------------------------------


def _ip(value: Any) -> str:
    """An IP address, as Neutron's validate_ip_address words its refusals."""
    if not isinstance(value, str) or value != value.strip():
        raise A.Invalid(f"'{value}' is not a valid IP address")
    try:
        parsed = ipaddress.ip_address(value)
    except ValueError:
        raise A.Invalid(f"'{value}' is not a valid IP address") from None
    if parsed.version == 4 and str(parsed) != value:
        raise A.Invalid(f"'{value}' is not an accepted IP address, '{parsed}' is recommended")
    return str(parsed)


def _keys(item: Any, expected: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise A.Invalid(
            f"Invalid input. '{item}' must be a dictionary with keys: {sorted(expected)}"
        )
    if set(item) != set(expected):
        raise A.Invalid(
            f"Validation of dictionary's keys failed. Expected keys: {set(expected)} "
            f"Provided keys: {set(item)}"
        )
    return item


def allocation_pools(value: Any) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise A.Invalid(f"Invalid data format for IP pool: '{value}'")
    result = []
    for pool in value:
        _keys(pool, ("start", "end"))
        result.append({"start": _ip(pool["start"]), "end": _ip(pool["end"])})
    return result


def dns_nameservers(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise A.Invalid(f"Invalid data format for nameserver: '{value}'")
    seen: list[str] = []
    for host in value:
        try:
            _ip(host)
        except A.Invalid as exc:
            raise A.Invalid(f"'{host}' is not a valid nameserver. {exc}") from None
        if host in seen:
            raise A.Invalid(f"Duplicate nameserver '{host}'")
        seen.append(host)
    return seen


def _route_cidr(value: Any) -> str:
    if not isinstance(value, str) or "/" not in value or value != value.strip():
        raise A.Invalid(f"'{value}' is not a valid CIDR")
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise A.Invalid(f"'{value}' is not a valid CIDR") from None
    if net.is_loopback:
        raise A.Invalid(f"'{value}' is not a routable CIDR")
    return str(net)


def host_routes(value: Any) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise A.Invalid(f"Invalid data format for hostroute: '{value}'")
    result: list[dict[str, str]] = []
    for route in value:
        _keys(route, ("destination", "nexthop"))
        parsed = {
            "destination": _route_cidr(route["destination"]),
            "nexthop": _ip(route["nexthop"]),
        }
        if parsed in result:
            raise A.Invalid(f"Duplicate hostroute '{route}'")
        result.append(parsed)
    return result


def service_types(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise A.Invalid("Subnet service types must be a list.")
    for item in value:
        if not isinstance(item, str):
            raise errors.invalid_input(f"Subnet service type {item} is not a string")
        if not item.startswith(SERVICE_TYPE_PREFIXES):
            raise errors.invalid_input(
                f"Subnet service type {item} does not correspond to a valid device owner"
            )
    return list(dict.fromkeys(value))


def ipv6_mode(value: Any) -> str | None:
    if value is not None and value not in R.IPV6_MODES:
        raise A.Invalid(f"'{value}' is not in {[*R.IPV6_MODES, None]}")
    return value


# --- Neutron's _validate_subnet -------------------------------------------------------------


def _same_version(version: int, value: str, name: str) -> None:
    if R.version_of(value) != version:
        raise errors.invalid_input(f"{name} '{value}' does not match the ip_version '{version}'")


def validate(
    spec: dict[str, Any],
    *,
    version: int,
    cidr: str | None,
    dhcp_was_enabled: bool = False,
    current_modes: tuple[str | None, str | None] | None = None,
    subnet_id: str | None = None,
) -> None:
    """Check what a create or update sets (``cidr`` only when the user gave one).

    ``current_modes`` (the subnet's ra and address modes) marks an update.
    """
    if cidr is not None:
        _same_version(version, cidr, "cidr")
        net = R.network_of(cidr)
        if version == 6 and int(net.network_address) == 0:
            raise errors.invalid_input("IPv6 subnet '::' is not supported")
        if spec.get("enable_dhcp") and not dhcp_was_enabled:
            if net.prefixlen > (30 if version == 4 else 126):
                raise errors.invalid_input(
                    "Subnet has a prefix length that is incompatible with DHCP service enabled"
                )
            if net.is_multicast:
                raise errors.invalid_input(
                    "Multicast IP subnet is not supported if enable_dhcp is True"
                )
            if net.is_loopback:
                raise errors.invalid_input(
                    "Loopback IP subnet is not supported if enable_dhcp is True"
                )
            if version == 4 and int(net.network_address) == 0:
                raise errors.invalid_input(
                    "First IP '0.0.0.0' of network is not supported if enable_dhcp is True."
                )
    gateway = spec.get("gateway_ip")
    if isinstance(gateway, str):
        _same_version(version, gateway, "gateway_ip")
        if cidr is not None and R.gateway_invalid(cidr, gateway):
            raise errors.invalid_input("Gateway is not valid on subnet")
    label = subnet_id or "new subnet"
    nameservers = spec.get("dns_nameservers")
    if isinstance(nameservers, list):
        if len(nameservers) > MAX_DNS_NAMESERVERS:
            raise errors.bad_request(
                f"Unable to complete operation for {label}. The number of DNS nameservers "
                f"exceeds the limit {MAX_DNS_NAMESERVERS}.",
                kind="DNSNameServersExhausted",
            )
        for server in nameservers:
            _same_version(version, server, "dns_nameserver")
    routes = spec.get("host_routes")
    if isinstance(routes, list):
        if len(routes) > MAX_HOST_ROUTES:
            raise errors.bad_request(
                f"Unable to complete operation for {label}. The number of host routes exceeds "
                f"the limit {MAX_HOST_ROUTES}.",
                kind="HostRoutesExhausted",
            )
        for route in routes:
            _same_version(version, route["nexthop"], "nexthop")
            _same_version(version, route["destination"], "destination")
    ra_mode, address_mode = spec.get("ipv6_ra_mode"), spec.get("ipv6_address_mode")
    if version == 4:
        if ra_mode is not None:
            raise errors.invalid_input("ipv6_ra_mode is not valid when ip_version is 4")
        if address_mode is not None:
            raise errors.invalid_input("ipv6_address_mode is not valid when ip_version is 4")
        return
    if current_modes is not None:
        if spec.get("enable_dhcp") is False and any(m is not None for m in current_modes):
            raise errors.invalid_input("Cannot disable enable_dhcp with ipv6 attributes set")
        return
    if (ra_mode or address_mode) and not spec.get("enable_dhcp"):
        raise errors.invalid_input(
            "ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False"
        )
    if ra_mode and address_mode and ra_mode != address_mode:
        raise errors.invalid_input(
            f"ipv6_ra_mode set to '{ra_mode}' with ipv6_address_mode set to '{address_mode}' is "
            "not valid. If both attributes are set, they must be the same value"
        )
    auto = R.is_auto_address(ra_mode, address_mode)
    if cidr is not None and auto and R.network_of(cidr).prefixlen != 64:
        raise errors.invalid_input(
            f"Invalid CIDR {cidr} for IPv6 address mode. OpenStack uses the EUI-64 address "
            "format, which requires the prefix to be /64"
        )


def check_mtu(network_id: str, mtu: int | None, version: int) -> None:
    """A network too small for IPv4 (68) or, for an IPv6 subnet, IPv6 (1280)."""
    if not mtu or mtu >= 1280:
        return
    needed = 68 if mtu < 68 else (1280 if version == 6 else 0)
    if needed:
        raise errors.conflict(
            "NetworkMTUSubnetConflict",
            f"MTU of {network_id} is not valid, subnet requires a minimum of {needed}",
        )
