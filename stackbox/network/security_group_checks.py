"""What Neutron checks in a security group rule, and when two rules are the same.

The protocol by name or number (legacy IPv6 ICMP names become ``ipv6-icmp``), port
ranges with TCP/UDP and ICMP type/code semantics (the full 1-65535 range becomes
"any"), a remote prefix whose IP version matches the ethertype, one remote (prefix or
group) at most. Each failure is Neutron's own error type and wording.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from stackbox import rest

# Neutron's protocol names and numbers (neutron_lib.constants.IP_PROTOCOL_MAP).
PROTOCOLS: dict[str, int] = {
    "ah": 51,
    "dccp": 33,
    "egp": 8,
    "esp": 50,
    "gre": 47,
    "hopopt": 0,
    "icmp": 1,
    "igmp": 2,
    "ip": 0,
    "ipip": 4,
    "ipv6-encap": 41,
    "ipv6-frag": 44,
    "ipv6-icmp": 58,
    "icmpv6": 58,
    "ipv6-nonxt": 59,
    "ipv6-opts": 60,
    "ipv6-route": 43,
    "ospf": 89,
    "pgm": 113,
    "rsvp": 46,
    "sctp": 132,
    "tcp": 6,
    "udp": 17,
    "udplite": 136,
    "vrrp": 112,
}
# What Neutron names each number when it compares rules (its reverse map).
NUMBER_NAMES = {str(number): name for name, number in PROTOCOLS.items() if name != "icmpv6"}
NUMBER_NAMES["0"] = "hopopt"
SUPPORTED = [None, "any", *PROTOCOLS]
PORT_PROTOCOLS = {6, 17, 33, 132, 136}
ICMP_PROTOCOLS = {1, 58}
LEGACY_IPV6_ICMP = ("icmp", "icmpv6")
IPV6_ONLY = {"ipv6-encap", "ipv6-frag", "ipv6-icmp", "icmpv6", "ipv6-nonxt", "ipv6-opts"}
IPV6_ONLY |= {"ipv6-route", "41", "44", "58", "59", "60", "43"}
ETHERTYPES = ["IPv4", "IPv6"]
ANY_PREFIXES = ("0.0.0.0/0", "::/0", None)


def invalid(kind: str, message: str) -> rest.BadRequest:
    return rest.BadRequest(message, kind=kind)


# --- converters: each raises Neutron's own error type -----------------------------------------


def convert_protocol(value: Any) -> str | None:
    if value is None or value == "any":
        return None
    if isinstance(value, bool):
        value = str(value)
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is not None:
        if 0 <= number <= 255:
            return str(value)
    elif isinstance(value, str) and value.lower() in SUPPORTED:
        return None if value.lower() == "any" else value.lower()
    raise invalid(
        "SecurityGroupRuleInvalidProtocol",
        f"Security group rule protocol {value} not supported. Only protocol values "
        f"{SUPPORTED} and integer representations [0 to 255] are supported.",
    )


def convert_port(value: Any) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if isinstance(value, bool) or not 0 <= number <= 65535:
        raise invalid("SecurityGroupInvalidPortValue", f"Invalid value for port {value}")
    return number


def convert_ethertype(value: Any) -> str:
    if isinstance(value, str):
        for ethertype in ETHERTYPES:
            if ethertype.lower() == value.lower():
                return ethertype
    raise invalid(
        "SecurityGroupRuleInvalidEtherType",
        f"Security group rule for ethertype '{value}' not supported. "
        f"Allowed values are {ETHERTYPES}.",
    )


def convert_prefix(value: Any) -> str | None:
    """An address or network; host bits are kept (normalized_cidr drops them)."""
    if value is None or value == "":
        return None
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return str(ipaddress.ip_interface(value.strip()))
    except ValueError:
        raise invalid("InvalidCIDR", f"Invalid CIDR {value} given as IP prefix.") from None


def normalized_cidr(prefix: str | None) -> str | None:
    return str(ipaddress.ip_interface(prefix).network) if prefix else None


# --- Neutron's checks on a parsed rule --------------------------------------------------------


def protocol_number(protocol: str | None) -> int | None:
    if protocol is None:
        return None
    if protocol in PROTOCOLS:
        return PROTOCOLS[protocol]
    return int(protocol)


def _check_ports(rule: dict[str, Any]) -> None:
    low, high = rule["port_range_min"], rule["port_range_max"]
    if low is None and high is None:
        return
    if not rule["protocol"]:
        raise invalid(
            "SecurityGroupProtocolRequiredWithPorts",
            "Must also specify protocol if port range is given.",
        )
    number = protocol_number(rule["protocol"])
    if number in PORT_PROTOCOLS:
        if low == 0 or high == 0:
            raise invalid("SecurityGroupInvalidPortValue", "Invalid value for port 0")
        if low is None or high is None or low > high:
            raise invalid(
                "SecurityGroupInvalidPortRange",
                "For TCP/UDP protocols, port_range_min must be <= port_range_max",
            )
    elif number in ICMP_PROTOCOLS:
        for attr, field in (("port_range_min", "type"), ("port_range_max", "code")):
            value = rule[attr]
            if value is not None and not 0 <= value <= 255:
                raise invalid(
                    "SecurityGroupInvalidIcmpValue",
                    f"Invalid value for ICMP {field} ({attr}) {value}. It must be 0 to 255.",
                )
        if low is None and high is not None:
            raise invalid(
                "SecurityGroupMissingIcmpType",
                f"ICMP code (port-range-max) {high} is provided but ICMP type "
                "(port-range-min) is missing.",
            )
    else:
        raise invalid(
            "SecurityGroupInvalidProtocolForPort",
            f"Ports cannot be specified for protocol {number}. Ports are only supported "
            "for DCCP, SCTP, TCP, UDP, UDPLITE.",
        )


def check_rule(rule: dict[str, Any]) -> None:
    """Canonicalize ``rule`` in place and apply Neutron's checks (400s)."""
    if rule["ethertype"] == "IPv6":
        if rule["protocol"] in LEGACY_IPV6_ICMP:
            rule["protocol"] = "ipv6-icmp"
        elif rule["protocol"] == "1":
            rule["protocol"] = "58"
    if rule["port_range_min"] == 1 and rule["port_range_max"] == 65535:
        rule["port_range_min"] = rule["port_range_max"] = None
    _check_ports(rule)
    prefix = rule["remote_ip_prefix"]
    if prefix is not None:
        version = ipaddress.ip_interface(prefix).version
        if rule["ethertype"] != f"IPv{version}":
            raise invalid(
                "SecurityGroupRuleParameterConflict",
                f"Conflicting value ethertype {rule['ethertype']} for CIDR {prefix}",
            )
    if rule["protocol"] in IPV6_ONLY and rule["ethertype"] == "IPv4":
        raise invalid(
            "SecurityGroupEthertypeConflictWithProtocol",
            f"Invalid ethertype {rule['ethertype']} for protocol {rule['protocol']}.",
        )
    if prefix is not None and rule.get("remote_group_id"):
        raise invalid(
            "SecurityGroupMultipleRemoteEntites",
            "Only one of remote_ip_prefix or remote_group_id or remote_address_group_id "
            "may be provided.",
        )


def rule_key(rule: Any) -> tuple[Any, ...]:
    """What makes two rules the same (Neutron's _rule_to_key): names and numbers alike."""
    get = rule.get if isinstance(rule, dict) else lambda name: getattr(rule, name)
    protocol = get("protocol")
    if protocol is not None:
        protocol = str(protocol)
        if get("ethertype") == "IPv6":
            protocol = {"icmp": "ipv6-icmp", "icmpv6": "ipv6-icmp", "1": "58"}.get(
                protocol, protocol
            )
        if protocol in PROTOCOLS:
            protocol = (protocol, str(PROTOCOLS[protocol]))
        else:
            protocol = (NUMBER_NAMES.get(protocol, protocol), protocol)
        if protocol[0] == "icmpv6":
            protocol = ("ipv6-icmp", "58")
    prefix = get("remote_ip_prefix")
    return (
        get("direction"),
        get("ethertype"),
        get("port_range_max"),
        get("port_range_min"),
        protocol,
        get("remote_group_id"),
        None if prefix in ANY_PREFIXES else prefix,
        get("security_group_id"),
    )
