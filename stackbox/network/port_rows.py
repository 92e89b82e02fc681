"""Creating, changing and deleting port rows: MACs, addresses (through IPAM),
security groups, port security, address pairs, DHCP options, bindings, DNS names.

No API policy is checked here: the port API checks it before calling in, and
routers, floating IPs and compute call in directly for the ports they own.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stackbox import context, rest
from stackbox.db import session as db_session
from stackbox.network import (
    common,
    errors,
    ipam,
    models,
    notify,
    port_bindings,
    port_schema,
    port_views,
    quotas,
    runtime,
    security_groups,
)

ROUTER_INTERFACE_OWNERS = (
    "network:router_interface",
    "network:ha_router_replicated_interface",
    "network:router_interface_distributed",
)
# Ports only their router or floating IP may delete (Neutron's router_device_owners).
L3_OWNERS = (
    *ROUTER_INTERFACE_OWNERS,
    "network:router_centralized_snat",
    "network:router_gateway",
    "network:router_ha_interface",
    "network:floatingip",
)
AUTO_ADDRESS_MODES = ("slaac", "dhcpv6-stateless")
MAC_ATTEMPTS = 16


def is_trusted(device_owner: str | None) -> bool:
    """Ports of network services (DHCP, routers) get no security groups."""
    return bool(device_owner) and str(device_owner).startswith("network:")


# --- MAC addresses --------------------------------------------------------------------------


def random_mac() -> str:
    """The operator's base_mac prefix (Neutron's fa:16:3e), then random octets."""
    base = runtime.get().settings.base_mac.lower().split(":")
    fixed = base[:3]
    if len(base) > 3 and base[3] not in ("", "00"):
        fixed.append(base[3])
    rest_octets = [f"{secrets.randbelow(256):02x}" for _ in range(6 - len(fixed))]
    return ":".join(fixed + rest_octets)


def _mac_in_use(network_id: str, mac: str) -> rest.Conflict:
    return errors.conflict(
        "MacAddressInUse",
        f"Unable to complete operation for network {network_id}. The mac address {mac} is in use.",
    )


def _mac_taken(session: Session, network_id: str, mac: str) -> bool:
    return (
        session.scalar(
            select(models.Port.id).where(
                models.Port.network_id == network_id, models.Port.mac_address == mac
            )
        )
        is not None
    )


def _insert(session: Session, port: models.Port, mac_given: bool) -> None:
    """Insert the row; the (network, MAC) unique constraint settles races."""
    if mac_given and _mac_taken(session, port.network_id, port.mac_address):
        raise _mac_in_use(port.network_id, port.mac_address)
    serialized = db_session.writers_serialized(session)
    for _ in range(MAC_ATTEMPTS):
        if not mac_given:
            port.mac_address = random_mac()
        if serialized:
            # No other writer can take the MAC between this look and the insert.
            if mac_given or not _mac_taken(session, port.network_id, port.mac_address):
                session.add(port)
                return
            continue
        # A random MAC rarely collides: try the insert and look only when it fails.
        try:
            with session.begin_nested():
                session.add(port)
            return
        except IntegrityError:
            if not _mac_taken(session, port.network_id, port.mac_address):
                raise
            if mac_given:
                raise _mac_in_use(port.network_id, port.mac_address) from None
    raise errors.conflict(
        "MacAddressGenerationFailure",
        f"Unable to generate unique mac on network {port.network_id}.",
    )


# --- security groups, address pairs, DHCP options ----------------------------------------------


def _set_groups(
    session: Session, port: models.Port, group_ids: list[str], *, replace: bool = True
) -> None:
    if replace:
        session.query(models.PortSecurityGroup).filter(
            models.PortSecurityGroup.port_id == port.id
        ).delete()
    for group_id in dict.fromkeys(group_ids):
        session.add(models.PortSecurityGroup(port_id=port.id, security_group_id=group_id))


def _set_pairs(
    session: Session, port: models.Port, pairs: list[dict[str, str]], *, replace: bool = True
) -> list[tuple[Any, ...]]:
    """Returns the (ip_address, mac_address) pairs written."""
    if replace:
        session.query(models.AllowedAddressPair).filter(
            models.AllowedAddressPair.port_id == port.id
        ).delete()
    unique = {(p.get("mac_address") or port.mac_address, p["ip_address"]): None for p in pairs}
    for mac, address in unique:
        session.add(models.AllowedAddressPair(port_id=port.id, mac_address=mac, ip_address=address))
    return [(address, mac) for mac, address in unique]


def _has(session: Session, model: Any, port_id: str) -> bool:
    return session.scalar(select(model.port_id).where(model.port_id == port_id)) is not None


def _opt_value_ok(name: str, value: Any) -> bool:
    return value is not None and (value != "" or name in port_schema.BLANK_OPTS)


def _merge_opts(session: Session, port: models.Port, opts: list[dict[str, Any]]) -> None:
    """Neutron's update: a named option is replaced, removed when its value is None,
    added when new; options not named stay."""
    current = {
        (o.opt_name, o.ip_version): o
        for o in session.scalars(
            select(models.ExtraDhcpOpt).where(models.ExtraDhcpOpt.port_id == port.id)
        )
    }
    for opt in opts:
        key = (opt["opt_name"], opt["ip_version"])
        row = current.get(key)
        if row is not None:
            if opt["opt_value"] is None:
                session.delete(row)
                del current[key]
            else:
                row.opt_value = opt["opt_value"]
        elif _opt_value_ok(opt["opt_name"], opt["opt_value"]):
            row = models.ExtraDhcpOpt(
                port_id=port.id,
                opt_name=opt["opt_name"],
                ip_version=opt["ip_version"],
                opt_value=opt["opt_value"],
            )
            session.add(row)
            current[key] = row


def _dns_name(value: str | None) -> str:
    """Neutron keeps a port's dns_name only when a dns_domain other than its default is set."""
    domain = port_schema.dns_domain()
    if not value or not domain or domain == port_schema.DNS_DOMAIN_DEFAULT:
        return ""
    return value


def _check_device(
    session: Session, ctx: context.RequestContext, owner: str, device_id: str, project_id: str
) -> None:
    """A project may not claim another project's router as its port's device."""
    if owner not in ROUTER_INTERFACE_OWNERS or common.is_admin(ctx) or not device_id:
        return
    router = session.get(models.Router, device_id)
    if router is not None and router.project_id != project_id:
        raise errors.conflict(
            "DeviceIDNotOwnedByTenant",
            f"The following device_id {device_id} is not owned by your project or matches "
            "another project router.",
        )


def _port_security_errors(pairs: bool, groups: bool) -> None:
    if pairs:
        raise errors.conflict(
            "AddressPairAndPortSecurityRequired",
            "Port Security must be enabled in order to have allowed address pairs on a port.",
        )
    if groups:
        raise rest.BadRequest(
            "Port security must be enabled and port must have an IP address in order to use "
            "security groups.",
            kind="PortSecurityAndIPRequiredForSecurityGroups",
        )


# --- create ---------------------------------------------------------------------------------


def create(
    session: Session,
    ctx: context.RequestContext,
    network: models.Network,
    spec: dict[str, Any],
    *,
    project_id: str | None = None,
    check_quota: bool = True,
    children: port_views.Children | None = None,
) -> models.Port:
    """See ``ports.create_port_row``; ``children``, when given, is filled with the
    child rows written (for ``port_views.render_fresh``)."""
    owner_project = project_id if project_id is not None else (ctx.project_id or "")
    if check_quota and owner_project:
        quotas.check(session, owner_project, "port")
    device_owner = spec.get("device_owner") or ""
    device_id = spec.get("device_id") or ""
    _check_device(session, ctx, device_owner, device_id, owner_project)
    secured = spec.get("port_security_enabled")
    if secured is None:
        secured = network.port_security_enabled
    pairs = spec.get("allowed_address_pairs") or []
    wanted_groups = spec.get("security_groups")
    if not secured:
        _port_security_errors(bool(pairs), bool(wanted_groups))
    group_ids: list[str] = []
    if secured and not is_trusted(device_owner):
        if wanted_groups is None:
            if owner_project:
                group_ids = [security_groups.ensure_default(session, owner_project)]
        else:
            group_ids = security_groups.check_for_port(session, ctx, owner_project, wanted_groups)
    port = models.Port(
        id=spec.get("id") or common.new_id(),
        name=spec.get("name") or "",
        network_id=network.id,
        mac_address=spec.get("mac_address") or "",
        admin_state_up=spec.get("admin_state_up", True) is not False,
        status=spec.get("status") or "DOWN",
        device_id=device_id,
        device_owner=device_owner,
        port_security_enabled=bool(secured),
        dns_name=_dns_name(spec.get("dns_name")),
        binding_host_id=spec.get("binding:host_id") or "",
        binding_vnic_type=spec.get("binding:vnic_type") or "normal",
        binding_profile=spec.get("binding:profile") or {},
        propagate_uplink_status=spec.get("propagate_uplink_status", True) is not False,
    )
    port.description = spec.get("description") or ""
    common.stamp_new(port, ctx, owner_project)
    _insert(session, port, mac_given=bool(spec.get("mac_address")))
    allocations = ipam.allocate(session, network, port, spec.get("fixed_ips"), new_port=True)
    if children is None:
        children = port_views.Children()
    children.addresses = [(a.ip_address, a.subnet_id) for a in allocations]
    # A new port has nothing to replace.
    _set_groups(session, port, group_ids, replace=False)
    children.groups = [(g,) for g in dict.fromkeys(group_ids)]
    children.pairs = _set_pairs(session, port, pairs, replace=False)
    for opt in spec.get("extra_dhcp_opts") or []:
        if _opt_value_ok(opt["opt_name"], opt["opt_value"]):
            row = models.ExtraDhcpOpt(
                port_id=port.id,
                opt_name=opt["opt_name"],
                ip_version=opt.get("ip_version", 4),
                opt_value=opt["opt_value"],
            )
            session.add(row)
            children.opts.append((row.opt_name, row.ip_version, row.opt_value))
    port_bindings.bind(session, port)
    session.flush()
    notify.port(session, port)
    return port


# --- update ---------------------------------------------------------------------------------


def _is_eui64(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.version == 6 and ip.packed[11:13] == b"\xff\xfe"


def _ip_required(subnet: models.Subnet | None, device_owner: str) -> bool:
    """Addresses of SLAAC subnets stay unless asked off (router interfaces excepted)."""
    if subnet is None or subnet.ip_version != 6:
        return True
    if subnet.ipv6_address_mode not in AUTO_ADDRESS_MODES:
        return True
    return device_owner in ROUTER_INTERFACE_OWNERS


def ip_changes(
    session: Session, port: models.Port, requested: list[dict[str, str]]
) -> tuple[list[models.IPAllocation], list[dict[str, str]]]:
    """Which held addresses go and which requested ones are new (Neutron's rules: an
    entry naming a held address keeps it; a subnet-only entry keeps one held address
    of that subnet; an unnamed held address goes unless its subnet is SLAAC)."""
    held = list(
        session.scalars(select(models.IPAllocation).where(models.IPAllocation.port_id == port.id))
    )
    by_ip = {a.ip_address: a for a in held}
    add: list[dict[str, str]] = []
    candidates: list[models.IPAllocation] = []
    for item in requested:
        if "ip_address" in item and by_ip.pop(item["ip_address"], None) is None:
            add.append(item)
    by_subnet: dict[str, list[models.IPAllocation]] = defaultdict(list)
    for allocation in by_ip.values():
        by_subnet[allocation.subnet_id].append(allocation)
    for item in requested:
        if "ip_address" in item:
            continue
        same = by_subnet.get(item["subnet_id"])
        if not same:
            add.append(item)
            continue
        kept = same.pop()
        if _is_eui64(kept.ip_address):
            add.append(item)
            candidates.append(kept)
    remove = []
    for allocation in [a for rows in by_subnet.values() for a in rows] + candidates:
        subnet = session.get(models.Subnet, allocation.subnet_id)
        if _ip_required(subnet, port.device_owner):
            remove.append(allocation)
    return remove, add


def _update_ips(
    session: Session, network: models.Network, port: models.Port, requested: list[dict[str, str]]
) -> bool:
    remove, add = ip_changes(session, port, requested)
    if not remove and not add:
        return False
    for allocation in remove:
        session.delete(allocation)
    session.flush()
    if add:
        ipam.allocate(session, network, port, add)
    return True


def _update_mac(session: Session, port: models.Port, wanted: str | None) -> None:
    new = wanted or random_mac()
    if new == port.mac_address:
        return
    if port_bindings.is_bound(port):
        raise errors.conflict(
            "PortBound",
            f"Unable to complete operation on port {port.id}, port is already bound, port "
            f"type: {port.binding_vif_type}, old_mac {port.mac_address}, new_mac {new}.",
        )
    if wanted is None:
        while _mac_taken(session, port.network_id, new):
            new = random_mac()
    elif _mac_taken(session, port.network_id, new):
        raise _mac_in_use(port.network_id, new)
    port.mac_address = new
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise _mac_in_use(port.network_id, new) from None


def _check_port_security(session: Session, port: models.Port, changes: dict[str, Any]) -> None:
    secured = changes.get("port_security_enabled", port.port_security_enabled)
    if secured:
        return
    pairs = changes.get("allowed_address_pairs")
    groups = changes.get("security_groups")
    _port_security_errors(bool(pairs), bool(groups))
    if "allowed_address_pairs" not in changes and _has(session, models.AllowedAddressPair, port.id):
        _port_security_errors(True, False)
    if "security_groups" not in changes and _has(session, models.PortSecurityGroup, port.id):
        raise errors.in_use(
            "PortSecurityPortHasSecurityGroup",
            "Port has security group associated. Cannot disable port security or IP address "
            "until security group is removed",
        )


def update(
    session: Session, ctx: context.RequestContext, port: models.Port, changes: dict[str, Any]
) -> models.Port:
    """See ``ports.update_port_row``."""
    if not changes:
        return port  # nothing asked: no new revision
    network = session.get(models.Network, port.network_id)
    if network is None:
        raise errors.resource_not_found("network", port.network_id)
    old_host = port.binding_host_id
    vnic = changes.get("binding:vnic_type")
    if vnic is not None and vnic != port.binding_vnic_type and port.binding_vif_type != "unbound":
        raise errors.in_use(
            "PortInUse",
            f"Unable to complete operation on port {port.id} for network {port.network_id}. "
            f"Port already has an attached device {port.device_id}.",
        )
    if "mac_address" in changes:
        _update_mac(session, port, changes["mac_address"])
    owner = changes.get("device_owner", port.device_owner)
    device_id = changes.get("device_id", port.device_id)
    if "device_owner" in changes or device_id != port.device_id:
        _check_device(session, ctx, owner or "", device_id or "", port.project_id)
    _check_port_security(session, port, changes)
    for key in ("name", "description", "admin_state_up", "device_id", "device_owner"):
        if key in changes and changes[key] is not None:
            setattr(port, key, changes[key])
    if "port_security_enabled" in changes:
        port.port_security_enabled = changes["port_security_enabled"]
    if changes.get("fixed_ips") is not None:
        # Imported here: floating IPs build on ports. A floating IP's fixed address must
        # stay; port forwardings to addresses given up go.
        from stackbox.network import floatingips

        floatingips.port_fixed_ips_changing(session, port.id, changes["fixed_ips"])
        _update_ips(session, network, port, changes["fixed_ips"])
    if "security_groups" in changes:
        wanted = [] if is_trusted(port.device_owner) else changes["security_groups"] or []
        _set_groups(
            session, port, security_groups.check_for_port(session, ctx, port.project_id, wanted)
        )
    if "allowed_address_pairs" in changes:
        _set_pairs(session, port, changes["allowed_address_pairs"] or [])
    if changes.get("extra_dhcp_opts"):
        _merge_opts(session, port, changes["extra_dhcp_opts"])
    if "dns_name" in changes:
        port.dns_name = _dns_name(changes["dns_name"])
    rebind = False
    if "binding:host_id" in changes:
        port.binding_host_id = changes["binding:host_id"] or ""
        rebind = True
    if vnic is not None:
        port.binding_vnic_type = vnic
        rebind = True
    if "binding:profile" in changes:
        port.binding_profile = changes["binding:profile"] or {}
        rebind = True
    if rebind:
        port_bindings.bind(session, port)
        if port.binding_host_id != old_host and port.status not in ("N/A",):
            port.status = "DOWN"
    common.bump(port)
    session.flush()
    notify.port(session, port)
    if old_host and old_host != port.binding_host_id:
        notify.nudge(
            session,
            "port",
            port.id,
            topic=f"{notify.BROADCAST}.{old_host}",
            network_id=port.network_id,
        )
    return port


# --- delete ---------------------------------------------------------------------------------


def delete(session: Session, port: models.Port) -> None:
    """See ``ports.delete_port_row``."""
    FIP = models.FloatingIP
    for fip in session.scalars(select(FIP).where(FIP.fixed_port_id == port.id)):
        router_id = fip.router_id
        fip.fixed_port_id = None
        fip.fixed_ip_address = None
        fip.router_id = None
        common.bump(fip)
        if router_id:
            notify.router(session, router_id)
    ipam.release(session, port.id)
    common.drop_tags(session, port_schema.RESOURCE, port.id)
    notify.port(session, port)
    session.delete(port)
    session.flush()
