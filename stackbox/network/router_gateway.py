"""A router's external gateway (router, ext-gw-mode): which external network it is
on, its addresses there, SNAT, and the centralized SNAT ports of distributed routers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stackbox import context, policy, rest
from stackbox.network import attributes as A
from stackbox.network import (
    common,
    errors,
    models,
    networks,
    notify,
    router_ports,
    router_routes,
)

INFO_KEYS = ("network_id", "external_fixed_ips", "enable_snat")


def _fixed_ips(value: Any) -> list[dict[str, str]]:
    """Neutron's ``type:fixed_ips``: dicts of optional ip_address / subnet_id."""
    if not isinstance(value, list):
        raise A.Invalid(f"Invalid data format for fixed IP: '{value}'")
    seen: list[str] = []
    result = []
    for item in value:
        if not isinstance(item, dict):
            raise A.Invalid(f"Invalid data format for fixed IP: '{item}'")
        entry: dict[str, str] = {}
        if "ip_address" in item:
            if item["ip_address"] in seen:
                raise A.Invalid(f"Duplicate IP address '{item['ip_address']}'")
            entry["ip_address"] = A.ip_address(item["ip_address"])
            seen.append(item["ip_address"])
        if "subnet_id" in item:
            entry["subnet_id"] = A.uuid_string(item["subnet_id"])
        result.append(entry)
    return result


def validate_info(value: Any) -> dict[str, Any] | None:
    """``external_gateway_info``: None or {} clears the gateway; else network_id is required."""
    if not value:
        if value in (None, {}):
            return None
        raise A.Invalid(f"'{value}' is not a dictionary")
    if not isinstance(value, dict):
        raise A.Invalid(f"'{value}' is not a dictionary")
    if "network_id" not in value:
        raise A.Invalid(
            "Validation of dictionary's keys failed. Expected keys: {'network_id'} "
            f"Provided keys: {set(value)}"
        )
    unexpected = [k for k in value if k not in INFO_KEYS]
    if unexpected:
        raise A.Invalid(f"Unexpected keys supplied: {', '.join(unexpected)}")
    info: dict[str, Any] = {"network_id": A.uuid_string(value["network_id"])}
    if "external_fixed_ips" in value:
        info["external_fixed_ips"] = _fixed_ips(value["external_fixed_ips"])
    if "enable_snat" in value:
        info["enable_snat"] = A.boolean(value["enable_snat"])
    return info


def enforce_info(
    request: rest.ApiRequest, action: str, target: dict[str, Any], info: dict[str, Any] | None
) -> None:
    """Attribute rules for the parts of the gateway a request sets (enable_snat: admin)."""
    if not info:
        return
    full = {"tenant_id": target.get("project_id"), **target}
    for key in INFO_KEYS:
        rule = f"{action}:external_gateway_info:{key}"
        if key in info and policy.has_rule(common.SERVICE, rule):
            try:
                policy.enforce(request.context, rule, full, service=common.SERVICE)
            except policy.PolicyNotAuthorized:
                raise errors.forbidden(f"({rule}) is disallowed by policy") from None


def render(
    router: models.Router, gw_network: str | None, pairs: list[tuple[str, str]]
) -> dict[str, Any] | None:
    if gw_network is None:
        return None
    return {
        "network_id": gw_network,
        "enable_snat": router.enable_snat,
        "external_fixed_ips": [{"subnet_id": s, "ip_address": ip} for s, ip in pairs],
    }


def gateway_port(session: Session, router: models.Router) -> models.Port | None:
    return session.get(models.Port, router.gw_port_id) if router.gw_port_id else None


def _external_network(
    session: Session, ctx: context.RequestContext, network_id: str, ext_ips: list[dict[str, str]]
) -> models.Network:
    network = networks.get_visible(session, ctx, network_id)
    if not network.external:
        raise router_ports.router_bad_request(f"Network {network_id} is not an external network")
    gateways = {s.gateway_ip for s in router_ports.network_subnets(session, network_id)}
    for ext_ip in ext_ips:
        if ext_ip.get("ip_address") and ext_ip["ip_address"] in gateways:
            raise router_ports.router_bad_request(
                f"External IP {ext_ip['ip_address']} is the same as the gateway IP"
            )
    return network


def _ips_change(session: Session, port: models.Port | None, ext_ips: list[dict[str, str]]) -> bool:
    if not ext_ips:
        return False
    if port is None:
        return True
    pairs = router_ports.addresses(session, [port.id])[port.id]
    if {s for s, _ in pairs} != {f["subnet_id"] for f in ext_ips if f.get("subnet_id")}:
        return True
    return {ip for _, ip in pairs} != {f["ip_address"] for f in ext_ips if f.get("ip_address")}


def _floating_ips_on(session: Session, router_id: str) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(models.FloatingIP)
            .where(models.FloatingIP.router_id == router_id)
        )
        or 0
    )


def apply(
    session: Session,
    ctx: context.RequestContext,
    router: models.Router,
    info: dict[str, Any] | None,
) -> None:
    """Set, move, re-address or clear the gateway (Neutron's _update_router_gw_info)."""
    router.enable_snat = info.get("enable_snat", True) if info else True
    port = gateway_port(session, router)
    ext_ips: list[dict[str, str]] = (info or {}).get("external_fixed_ips", [])
    ips_change = _ips_change(session, port, ext_ips)
    network_id = info["network_id"] if info else None
    network = _external_network(session, ctx, network_id, ext_ips) if network_id else None
    routes = router_routes.current(session, router.id)
    if routes:
        router_routes.check_nexthops(session, router, routes, network_id or "")
    if port is not None and ips_change and port.network_id == network_id:
        router_ports.set_addresses(session, ctx, port, ext_ips)
        notify.router(session, router.id)
        return
    if port is not None and port.network_id != network_id:
        if _floating_ips_on(session, router.id):
            raise errors.in_use(
                "RouterExternalGatewayInUseByFloatingIp",
                f"Gateway cannot be updated for router {router.id}, since a gateway to "
                f"external network {port.network_id} is required by one or more floating IPs.",
            )
        router.gw_port_id = None
        session.flush()
        router_ports.delete_port(session, port)
        drop_snat_ports(session, router)
        port = None
    if network is not None and port is None:
        router_ports.check_new_subnets(
            session, router, router_ports.network_subnets(session, network.id)
        )
        port = router_ports.create_port(
            session,
            ctx,
            network=network,
            project_id="",
            device_id=router.id,
            device_owner=router_ports.GATEWAY,
            fixed_ips=ext_ips or None,
            router_id=router.id,
        )
        router.gw_port_id = port.id
        session.flush()
        if router.distributed:
            ensure_snat_ports(session, ctx, router)
    notify.router(session, router.id)


def remove(session: Session, router: models.Router) -> None:
    """Drop the gateway of a router being deleted (refused while floating IPs use it)."""
    port = gateway_port(session, router)
    if port is None:
        return
    if _floating_ips_on(session, router.id):
        raise errors.in_use(
            "RouterExternalGatewayInUseByFloatingIp",
            f"Gateway cannot be updated for router {router.id}, since a gateway to "
            f"external network {port.network_id} is required by one or more floating IPs.",
        )
    router.gw_port_id = None
    session.flush()
    router_ports.delete_port(session, port)


# --- distributed routers: centralized SNAT ports ---------------------------------------------


def ensure_snat_ports(session: Session, ctx: context.RequestContext, router: models.Router) -> None:
    """A distributed router with a gateway SNATs each internal subnet through a port of its
    own on that subnet (device owner ``network:router_centralized_snat``)."""
    if not router.distributed or not router.gw_port_id:
        return
    interfaces = router_ports.router_ports(session, router.id, router_ports.INTERFACE_OWNERS)
    snat = router_ports.router_ports(session, router.id, [router_ports.CENTRALIZED_SNAT])
    pairs = router_ports.addresses(session, [p.id for p in interfaces + snat])
    covered = {subnet for p in snat for subnet, _ in pairs[p.id]}
    for interface in interfaces:
        wanted = [s for s, _ in pairs[interface.id] if s not in covered]
        if not wanted:
            continue
        network = session.get(models.Network, interface.network_id)
        assert network is not None
        router_ports.create_port(
            session,
            ctx,
            network=network,
            project_id="",
            device_id=router.id,
            device_owner=router_ports.CENTRALIZED_SNAT,
            fixed_ips=[{"subnet_id": s} for s in wanted],
            router_id=router.id,
        )
        covered.update(wanted)


def drop_snat_ports(
    session: Session, router: models.Router, subnet_ids: set[str] | None = None
) -> None:
    """Remove the SNAT ports of a router (or only those on the given subnets)."""
    snat = router_ports.router_ports(session, router.id, [router_ports.CENTRALIZED_SNAT])
    pairs = router_ports.addresses(session, [p.id for p in snat])
    for port in snat:
        if subnet_ids is None or {s for s, _ in pairs[port.id]} & subnet_ids:
            router_ports.delete_port(session, port)
