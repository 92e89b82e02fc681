"""Router interfaces: ``add_router_interface`` / ``remove_router_interface`` by subnet
(the router takes the subnet's gateway address) or by an unattached port."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import context, rest
from stackbox.network import attributes as A
from stackbox.network import (
    common,
    errors,
    models,
    notify,
    ports,
    rbac,
    router_gateway,
    router_ports,
    router_routes,
)


def _interface_info(body: Any, removal: bool) -> dict[str, str]:
    info = body if isinstance(body, dict) else {}
    if "port_id" not in info and "subnet_id" not in info:
        raise router_ports.router_bad_request("Either subnet_id or port_id must be specified")
    result = {}
    for key in ("port_id", "subnet_id"):
        if key in info:
            try:
                result[key] = A.uuid_string(info[key])
            except A.Invalid as exc:
                raise router_ports.router_bad_request(str(exc)) from None
    if not removal and len(result) == 2:
        raise router_ports.router_bad_request("Cannot specify both subnet-id and port-id")
    return result


def get_subnet(session: Session, ctx: context.RequestContext, subnet_id: str) -> models.Subnet:
    """The subnet if ``ctx`` may see it (own, or on a network it may see); else 404."""
    subnet = session.get(models.Subnet, subnet_id)
    if subnet is not None and not common.is_admin(ctx) and subnet.project_id != ctx.project_id:
        visible = session.scalar(
            select(models.Network.id).where(
                models.Network.id == subnet.network_id, rbac.network_clause(ctx)
            )
        )
        subnet = subnet if visible else None
    if subnet is None:
        raise errors.resource_not_found("subnet", subnet_id)
    return subnet


def get_port(session: Session, ctx: context.RequestContext, port_id: str) -> models.Port:
    """The port if ``ctx`` may see it (the ports module's rule); else 404."""
    return ports.get_visible(session, ctx, port_id)


def _check_address_mode(subnet: models.Subnet) -> None:
    if (
        subnet.ip_version == 6
        and subnet.ipv6_ra_mode is None
        and subnet.ipv6_address_mode in ("slaac", "dhcpv6-stateless")
    ):
        raise router_ports.router_bad_request(
            f"IPv6 subnet {subnet.id} configured to receive RAs from an external router "
            "cannot be added to Neutron Router."
        )


def _has_ipv6(pairs: list[tuple[str, str]]) -> bool:
    return any(not router_ports.is_ipv4(ip) for _, ip in pairs)


def _one_ipv6_port_per_network(session: Session, router: models.Router, port: models.Port) -> None:
    mine = router_ports.addresses(session, [port.id])[port.id]
    if not _has_ipv6(mine):
        return
    others = [
        p
        for p in router_ports.router_ports(session, router.id)
        if p.id != port.id and p.network_id == port.network_id
    ]
    pairs = router_ports.addresses(session, [p.id for p in others])
    for other in others:
        if _has_ipv6(pairs[other.id]) and port.device_owner not in (
            router_ports.CENTRALIZED_SNAT,
            router_ports.INTERFACE_DISTRIBUTED,
        ):
            raise router_ports.router_bad_request(
                f"Router already contains IPv6 port {other.id} belonging to network id "
                f"{other.network_id}. Only one IPv6 port from the same network subnet can be "
                "connected to a router."
            )


def _in_pools(session: Session, subnet_id: str, address: str) -> bool:
    ip = int(ipaddress.ip_address(address))
    for pool in session.scalars(
        select(models.AllocationPool).where(models.AllocationPool.subnet_id == subnet_id)
    ):
        first, last = ipaddress.ip_address(pool.first_ip), ipaddress.ip_address(pool.last_ip)
        if int(first) <= ip <= int(last):
            return True
    return False


def _add_by_port(
    session: Session, ctx: context.RequestContext, router: models.Router, port_id: str
) -> tuple[models.Port, list[models.Subnet]]:
    port = get_port(session, ctx, port_id)
    if port.device_id:
        raise errors.in_use(
            "PortInUse",
            f"Unable to complete operation on port {port.id} for network {port.network_id}. "
            f"Port already has an attached device {port.device_id}.",
        )
    pairs = router_ports.addresses(session, [port.id])[port.id]
    if not pairs:
        raise router_ports.router_bad_request("Router port must have at least one fixed IP")
    subnets = router_ports.subnets_of(session, [s for s, _ in pairs])
    for subnet in subnets:
        _check_address_mode(subnet)
    router_ports.set_owner(session, ctx, port, router.id, router_ports.interface_owner(router))
    _one_ipv6_port_per_network(session, router, port)
    router_ports.check_new_subnets(session, router, subnets)
    if len([s for s in subnets if s.ip_version == 4]) > 1:
        raise router_ports.router_bad_request("Cannot have multiple IPv4 subnets on router port")
    if not common.is_admin(ctx):
        owners = {s.id: s.project_id for s in subnets}
        for subnet_id, ip in pairs:
            if not _in_pools(session, subnet_id, ip) and owners[subnet_id] != ctx.project_id:
                raise router_ports.router_bad_request(
                    f"Cannot add interface to router because specified port {port.id} has an "
                    f"IP address out of the allocation pool of subnet {subnet_id}, which is "
                    "not owned by the project making the request"
                )
    session.add(
        models.RouterPort(router_id=router.id, port_id=port.id, port_type=port.device_owner)
    )
    session.flush()
    return port, subnets


def _shared_to(session: Session, network_id: str, project_id: str | None) -> bool:
    R = models.RbacPolicy
    return (
        session.scalar(
            select(R.id).where(
                R.object_type == "network",
                R.object_id == network_id,
                R.action == rbac.SHARED,
                R.target_project == (project_id or ""),
            )
        )
        is not None
    )


def _add_by_subnet(
    session: Session, ctx: context.RequestContext, router: models.Router, subnet_id: str
) -> tuple[models.Port, list[models.Subnet], bool]:
    subnet = get_subnet(session, ctx, subnet_id)
    if not subnet.gateway_ip:
        raise router_ports.router_bad_request("Subnet for router interface must have a gateway IP")
    # A subnet of another project only through an RBAC grant to this project (not '*').
    if (
        subnet.project_id != ctx.project_id
        and not common.is_admin(ctx)
        and not _shared_to(session, subnet.network_id, ctx.project_id)
    ):
        raise router_ports.router_bad_request(
            f"Cannot add interface to router because subnet {subnet.id} is not owned by "
            "project making the request"
        )
    _check_address_mode(subnet)
    router_ports.check_new_subnets(session, router, [subnet])
    network = session.get(models.Network, subnet.network_id)
    assert network is not None
    fixed_ip = {"subnet_id": subnet.id, "ip_address": subnet.gateway_ip}
    if subnet.ip_version == 6:
        # Further IPv6 prefixes of one network go on the router's existing IPv6 port there.
        owner = router_ports.interface_owner(router)
        held = [
            p
            for p in router_ports.router_ports(session, router.id, [owner])
            if p.network_id == subnet.network_id
        ]
        pairs = router_ports.addresses(session, [p.id for p in held])
        for port in held:
            if _has_ipv6(pairs[port.id]):
                wanted = [*router_ports.fixed_ips_of(session, port), fixed_ip]
                router_ports.set_addresses(session, ctx, port, wanted)
                return port, [subnet], False
    port = router_ports.create_port(
        session,
        ctx,
        network=network,
        project_id=router.project_id,
        device_id=router.id,
        device_owner=router_ports.interface_owner(router),
        fixed_ips=[fixed_ip],
        router_id=router.id,
    )
    return port, [subnet], True


def _body(
    router: models.Router, port: models.Port, subnet_id: str, subnet_ids: list[str]
) -> dict[str, Any]:
    return {
        "id": router.id,
        "tenant_id": port.project_id,
        "project_id": port.project_id,
        "port_id": port.id,
        "network_id": port.network_id,
        "subnet_id": subnet_id,
        "subnet_ids": subnet_ids,
    }


def add(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ctx = request.context
    router = router_ports.get_router(session, ctx, request.path_params["router_id"], lock=True)
    common.enforce(request, "add_router_interface", router_ports.router_target(router))
    info = _interface_info(request.body, removal=False)
    if "port_id" in info:
        port, subnets = _add_by_port(session, ctx, router, info["port_id"])
    else:
        port, subnets, _new = _add_by_subnet(session, ctx, router, info["subnet_id"])
    router_gateway.ensure_snat_ports(session, ctx, router)
    common.bump(router)
    notify.router(session, router.id)
    return _body(router, port, subnets[-1].id, [s.id for s in subnets])


# --- removal --------------------------------------------------------------------------------


def _subnet_port_ids(session: Session, subnet_id: str) -> set[str]:
    return set(
        session.scalars(
            select(models.IPAllocation.port_id).where(models.IPAllocation.subnet_id == subnet_id)
        )
    )


def _check_not_in_use(session: Session, router: models.Router, subnet: models.Subnet) -> None:
    """Floating IPs, port forwardings or routes through the subnet keep its interface."""
    cidr = ipaddress.ip_network(subnet.cidr)
    on_subnet = _subnet_port_ids(session, subnet.id)

    def through(address: str | None, port_id: str | None) -> bool:
        if not address or port_id not in on_subnet:
            return False
        ip = ipaddress.ip_address(address)
        return ip.version == cidr.version and ip in cidr

    fips = list(
        session.scalars(select(models.FloatingIP).where(models.FloatingIP.router_id == router.id))
    )
    forwardings = list(
        session.scalars(
            select(models.PortForwarding).where(
                models.PortForwarding.floatingip_id.in_([f.id for f in fips])
            )
        )
    )
    if any(through(pf.internal_ip_address, pf.internal_port_id) for pf in forwardings) or any(
        through(f.fixed_ip_address, f.fixed_port_id) for f in fips
    ):
        raise errors.in_use(
            "RouterInterfaceInUseByFloatingIP",
            f"Router interface for subnet {subnet.id} on router {router.id} cannot be "
            "deleted, as it is required by one or more floating IPs.",
        )
    if router_routes.blocking_subnet(router_routes.current(session, router.id), subnet.cidr):
        raise errors.in_use(
            "RouterInterfaceInUseByRoute",
            f"Router interface for subnet {subnet.id} on router {router.id} cannot be "
            "deleted, as it is required by one or more routes.",
        )


def _remove_by_port(
    session: Session, router: models.Router, port_id: str, subnet_id: str | None
) -> tuple[models.Port, list[models.Subnet]]:
    owner = router_ports.interface_owner(router)
    port = next(
        (p for p in router_ports.router_ports(session, router.id, [owner]) if p.id == port_id),
        None,
    )
    if port is None:
        raise errors.not_found(
            "RouterInterfaceNotFound",
            f"Router {router.id} does not have an interface with id {port_id}",
        )
    subnet_ids = [s for s, _ in router_ports.addresses(session, [port.id])[port.id]]
    if subnet_id and subnet_id not in subnet_ids:
        raise errors.bad_request(
            f"Subnet on port {port.id} does not match the requested subnet {subnet_id}.",
            kind="SubnetMismatchForPort",
        )
    subnets = router_ports.subnets_of(session, subnet_ids)
    for subnet in subnets:
        _check_not_in_use(session, router, subnet)
    router_ports.delete_port(session, port)
    return port, subnets


def _remove_by_subnet(
    session: Session, ctx: context.RequestContext, router: models.Router, subnet_id: str
) -> tuple[models.Port, list[models.Subnet]]:
    subnet = get_subnet(session, ctx, subnet_id)
    owner = router_ports.interface_owner(router)
    held = [
        p
        for p in router_ports.router_ports(session, router.id, [owner])
        if p.network_id == subnet.network_id
    ]
    if held:
        _check_not_in_use(session, router, subnet)
    pairs = router_ports.addresses(session, [p.id for p in held])
    for port in held:
        on = [s for s, _ in pairs[port.id]]
        if subnet.id in on and len(on) > 1:
            wanted = [
                f for f in router_ports.fixed_ips_of(session, port) if f["subnet_id"] != subnet.id
            ]
            router_ports.set_addresses(session, ctx, port, wanted)
            return port, [subnet]
        if subnet.id in on:
            router_ports.delete_port(session, port)
            return port, [subnet]
    raise errors.not_found(
        "RouterInterfaceNotFoundForSubnet",
        f"Router {router.id} has no interface on subnet {subnet_id}",
    )


def remove(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ctx = request.context
    router = router_ports.get_router(session, ctx, request.path_params["router_id"], lock=True)
    common.enforce(request, "remove_router_interface", router_ports.router_target(router))
    info = _interface_info(request.body, removal=True)
    if "port_id" in info:
        port, subnets = _remove_by_port(session, router, info["port_id"], info.get("subnet_id"))
    else:
        port, subnets = _remove_by_subnet(session, ctx, router, info["subnet_id"])
    if router.distributed:
        router_gateway.drop_snat_ports(session, router, {s.id for s in subnets})
        router_gateway.ensure_snat_ports(session, ctx, router)
    common.bump(router)
    notify.router(session, router.id)
    return _body(router, port, subnets[0].id, [s.id for s in subnets])


ROUTES = [
    rest.Route("PUT", "/v2.0/routers/{router_id}/add_router_interface", add),
    rest.Route("PUT", "/v2.0/routers/{router_id}/remove_router_interface", remove),
]
