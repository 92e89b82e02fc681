"""The port's attribute map and the validators of its structured attributes
(fixed IPs, MACs, allowed address pairs, extra DHCP options, DNS names), with
Neutron's messages and error types."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from stackbox import rest
from stackbox.network import attributes as A
from stackbox.network import runtime

RESOURCE = "port"
# Neutron's default dns_domain: with it, a port's dns_name is not kept.
DNS_DOMAIN_DEFAULT = "openstacklocal."
# Neutron's max_allowed_address_pair default.
MAX_ADDRESS_PAIRS = 10
VNIC_TYPES = (
    "normal",
    "direct",
    "macvtap",
    "baremetal",
    "direct-physical",
    "virtio-forwarder",
    "smart-nic",
    "vdpa",
    "accelerator-direct",
    "accelerator-direct-physical",
    "remote-managed",
)
# Default of attributes whose absence means "not specified" (Neutron's ATTR_NOT_SPECIFIED).
NOT_SET: Any = None
MAC_FORMS = (
    re.compile(r"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$"),
    re.compile(r"^[0-9a-fA-F]{12}$"),
    re.compile(r"^([0-9a-fA-F]{4}\.){2}[0-9a-fA-F]{4}$"),
)
INVALID_MACS = ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff")
DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}$", re.IGNORECASE)


def mac(value: Any) -> str:
    """A MAC in any of netaddr's usual spellings, returned as lower-case xx:xx:..."""
    if not isinstance(value, str) or not any(form.match(value) for form in MAC_FORMS):
        raise A.Invalid(f"'{value}' is not a valid MAC address")
    digits = re.sub(r"[^0-9a-fA-F]", "", value).lower()
    canonical = ":".join(digits[i : i + 2] for i in range(0, 12, 2))
    if canonical in INVALID_MACS:
        raise A.Invalid(f"'{value}' is not a valid MAC address")
    return canonical


def mac_or_none(value: Any) -> str | None:
    """None asks for a generated MAC (port-mac-address-regenerate)."""
    return None if value is None else mac(value)


def fixed_ips(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise A.Invalid(f"Invalid data format for fixed IP: '{value}'")
    seen: list[str] = []
    result = []
    for entry in value:
        if not isinstance(entry, dict):
            raise A.Invalid(f"Invalid data format for fixed IP: '{entry}'")
        item: dict[str, str] = {}
        if "ip_address" in entry:
            address = entry["ip_address"]
            if address in seen:
                raise A.Invalid(f"Duplicate IP address '{address}'")
            item["ip_address"] = A.ip_address(address)
            seen.append(address)
        if "subnet_id" in entry:
            item["subnet_id"] = A.uuid_string(entry["subnet_id"])
        if not item:
            raise A.Invalid("IP allocation requires subnet_id or ip_address")
        result.append(item)
    return result


def fixed_ips_or_none(value: Any) -> list[dict[str, str]] | None:
    return None if value is None else fixed_ips(value)


def _pair_address(value: Any) -> str:
    """An address or network, kept as written (IPv4 networks may carry host bits)."""
    if not isinstance(value, str) or value != value.strip():
        raise A.Invalid(f"'{value}' is not a valid IP address")
    try:
        if "/" in value:
            network = ipaddress.ip_network(value, strict=False)
            if network.version == 4:
                host, _, length = value.partition("/")
                if str(ipaddress.ip_address(host)) != host or str(int(length)) != length:
                    raise ValueError(value)
            if network.is_multicast:
                raise A.Invalid(f"Multicast IP subnet '{value}' is not allowed.")
        else:
            address = ipaddress.ip_address(value)
            if address.is_multicast:
                raise A.Invalid(f"Multicast IP address '{value}' is not allowed.")
    except ValueError:
        kind = "IP subnet" if "/" in value else "IP address"
        raise A.Invalid(f"'{value}' is not a valid {kind}") from None
    return value


def address_pairs(value: Any) -> list[dict[str, str]]:
    """Allowed address pairs: ip_address (address or CIDR) and an optional mac_address."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise rest.BadRequest("Allowed address pairs must be a list.", kind="HTTPBadRequest")
    if len(value) > MAX_ADDRESS_PAIRS:
        raise rest.BadRequest(
            f"The number of allowed address pair exceeds the maximum {MAX_ADDRESS_PAIRS}.",
            kind="AllowedAddressPairExhausted",
        )
    seen: set[tuple[Any, Any]] = set()
    result = []
    for pair in value:
        if not isinstance(pair, dict):
            raise A.Invalid(f"'{pair}' is not a dictionary")
        item: dict[str, str] = {}
        if "mac_address" in pair:
            try:
                item["mac_address"] = mac(pair["mac_address"])
            except A.Invalid as exc:
                raise rest.BadRequest(str(exc), kind="HTTPBadRequest") from None
            if int(item["mac_address"][:2], 16) & 1:
                raise rest.BadRequest(
                    f"Multicast MAC address '{pair['mac_address']}' is not allowed.",
                    kind="HTTPBadRequest",
                )
        if "ip_address" not in pair:
            raise rest.BadRequest(
                "Invalid input for operation: AllowedAddressPair must contain ip_address.",
                kind="AllowedAddressPairsMissingIP",
            )
        key = (pair.get("mac_address"), pair["ip_address"])
        if key in seen:
            raise rest.BadRequest(
                "Invalid input for operation: Request contains duplicate address pair: "
                f"mac_address {key[0]} ip_address {key[1]}.",
                kind="DuplicateAddressPairInRequest",
            )
        seen.add(key)
        unknown = set(pair) - {"mac_address", "ip_address"}
        if unknown:
            raise rest.BadRequest(
                f"Unrecognized attribute(s) '{', '.join(sorted(unknown))}'",
                kind="HTTPBadRequest",
            )
        try:
            item["ip_address"] = _pair_address(pair["ip_address"])
        except A.Invalid as exc:
            raise rest.BadRequest(str(exc), kind="HTTPBadRequest") from None
        result.append(item)
    return result


# Options that may be sent with an empty value (Neutron's VALID_BLANK_EXTRA_DHCP_OPTS).
BLANK_OPTS = ("router", "classless-static-route")


def _one_line(value: Any, limit: int, what: str) -> str:
    if not isinstance(value, str):
        raise A.Invalid(f"'{value}' is not a valid string")
    if not value.strip():
        raise A.Invalid(f"'{value}' Blank strings are not permitted")
    if "\n" in value or "\r" in value:
        raise A.Invalid(f"Multi-line string is not allowed: '{value}'")
    if len(value) > limit:
        raise A.Invalid(f"'{value}' exceeds maximum length of {limit}")
    return value


def dhcp_opts(value: Any) -> list[dict[str, Any]] | None:
    """Extra DHCP options: opt_name, opt_value (None deletes on update), ip_version 4|6."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise A.Invalid(f"'{value}' is not a list")
    result = []
    for opt in value:
        if not isinstance(opt, dict):
            raise A.Invalid(f"'{opt}' is not a dictionary")
        unknown = set(opt) - {"opt_name", "opt_value", "ip_version"}
        if unknown:
            raise A.Invalid(f"Unexpected keys supplied: {', '.join(sorted(unknown))}")
        if "opt_name" not in opt or "opt_value" not in opt:
            missing = [k for k in ("opt_name", "opt_value") if k not in opt]
            raise A.Invalid(f"Validation of dictionary's keys failed. Expected keys: {missing}")
        name = _one_line(opt["opt_name"], 64, "opt_name")
        raw = opt["opt_value"]
        if raw is None or (name in BLANK_OPTS and isinstance(raw, str) and raw == ""):
            opt_value = raw
        else:
            opt_value = _one_line(raw, 255, "opt_value")
        version = opt.get("ip_version", 4)
        try:
            version = int(version)
        except (TypeError, ValueError):
            raise A.Invalid(f"'{version}' is not an integer") from None
        if version not in (4, 6):
            raise A.Invalid(f"'{version}' is not in [4, 6]")
        result.append({"opt_name": name, "opt_value": opt_value, "ip_version": version})
    return result


def dns_domain() -> str:
    domain = runtime.get().settings.dns_domain or ""
    if domain and not domain.endswith("."):
        domain += "."
    return domain


def dns_name(value: Any) -> str:
    """Neutron's dns_host_name: RFC 1123 labels; an FQDN must end in the dns_domain."""
    if not isinstance(value, str):
        raise A.Invalid(f"Input value {value} must be string type")
    value = value.lower()
    if not value:
        return value
    trimmed = value[:-1] if value.endswith(".") else value
    reason = None
    if len(trimmed) > 255:
        reason = f"'{trimmed}' exceeds the 255 character FQDN limit"
    else:
        labels = trimmed.split(".")
        for label in labels:
            if not label:
                reason = "Encountered an empty component"
            elif label.startswith("-") or label.endswith("-"):
                reason = f"Name '{label}' must not start or end with a hyphen"
            elif not DNS_LABEL.match(label):
                reason = (
                    f"Name '{label}' must be 1-63 characters long, each of which can only be "
                    "alphanumeric or a hyphen"
                )
            if reason:
                break
        if not reason and len(labels) > 1 and labels[-1].isdigit():
            reason = f"TLD '{labels[-1]}' must not be all numeric"
    if reason:
        raise A.Invalid(f"'{value}' not a valid PQDN or FQDN. Reason: {reason}")
    domain = dns_domain()
    if domain and domain != DNS_DOMAIN_DEFAULT and value.endswith("."):
        higher = f".{domain}"
        if len(value) <= len(higher) or not value.endswith(higher):
            raise A.Invalid(
                "The dns_name passed is a FQDN. Its higher level labels must be equal to the "
                f"dns_domain option in neutron.conf, that has been set to '{domain}'. It must "
                f"also include one or more valid DNS labels to the left of '{domain}'"
            )
    return value


def uuid_list(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise A.Invalid(f"'{value}' is not a list")
    result = [A.uuid_string(v) for v in value]
    if len(set(result)) != len(result):
        raise A.Invalid(f"Duplicate items in the list: '{', '.join(value)}'")
    return result


def profile(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise A.Invalid(f"'{value}' is not a dictionary")
    return value


ATTRS = A.spec(
    A.Attr("id", visible=True, sort=True),
    A.Attr("name", post=True, put=True, default="", validate=A.name_string(255), sort=True),
    A.Attr("description", post=True, put=True, default="", validate=A.name_string(255)),
    A.Attr("network_id", post=True, default=A.MISSING, validate=A.uuid_string, sort=True),
    A.Attr(
        "project_id", post=True, default=None, validate=A.name_string(255), sort=True, owner=True
    ),
    A.Attr(
        "tenant_id", post=True, default=None, validate=A.name_string(255), sort=True, owner=True
    ),
    A.Attr("admin_state_up", post=True, put=True, default=True, validate=A.boolean, sort=True),
    A.Attr("mac_address", post=True, put=True, default=NOT_SET, validate=mac_or_none, policy=True),
    A.Attr(
        "fixed_ips", post=True, put=True, default=NOT_SET, validate=fixed_ips_or_none, policy=True
    ),
    A.Attr("device_id", post=True, put=True, default="", validate=A.name_string(255), policy=True),
    A.Attr(
        "device_owner", post=True, put=True, default="", validate=A.name_string(255), policy=True
    ),
    A.Attr("status", sort=True),
    A.Attr(
        "port_security_enabled",
        post=True,
        put=True,
        default=NOT_SET,
        validate=A.boolean,
        policy=True,
    ),
    A.Attr(
        "security_groups", post=True, put=True, default=NOT_SET, validate=uuid_list, filter=False
    ),
    A.Attr(
        "allowed_address_pairs",
        post=True,
        put=True,
        default=NOT_SET,
        validate=address_pairs,
        policy=True,
        filter=False,
    ),
    A.Attr("extra_dhcp_opts", post=True, put=True, default=None, validate=dhcp_opts, filter=False),
    A.Attr(
        "binding:host_id",
        post=True,
        put=True,
        default=NOT_SET,
        validate=A.string_or_none(255),
        policy=True,
    ),
    A.Attr(
        "binding:vnic_type",
        post=True,
        put=True,
        default="normal",
        validate=A.one_of(*VNIC_TYPES),
        policy=True,
    ),
    A.Attr("binding:profile", post=True, put=True, default=NOT_SET, validate=profile, policy=True),
    A.Attr("binding:vif_type", policy=True),
    A.Attr("binding:vif_details", policy=True, filter=False),
    A.Attr("dns_name", post=True, put=True, default="", validate=dns_name),
    A.Attr("dns_assignment", filter=False),
    A.Attr("propagate_uplink_status", post=True, default=True, validate=A.boolean),
    A.Attr("revision_number", sort=True),
    A.Attr("created_at", sort=True),
    A.Attr("updated_at", sort=True),
    A.Attr("tags", filter=False),
)


def explicitly_set(name: str, value: Any, create: bool) -> bool:
    """Neutron checks ``<action>:<attr>`` rules only for values a request really sets:
    any value on update, a value other than the default on create."""
    default = ATTRS[name].default
    return not create or default is NOT_SET or value != default
