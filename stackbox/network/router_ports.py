"""What routers and floating IPs share: device owners, router lookup, the ports a
router owns and their addresses, and making or removing those ports through the
ports module (so a router port is an ordinary port in every respect)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import context
from stackbox.network import common, errors, models, ports

GATEWAY = "network:router_gateway"
INTERFACE = "network:router_interface"
INTERFACE_DISTRIBUTED = "network:router_interface_distributed"
INTERFACE_HA = "network:ha_router_replicated_interface"
CENTRALIZED_SNAT = "network:router_centralized_snat"
HA_INTERFACE = "network:router_ha_interface"
FLOATINGIP = "network:floatingip"
DHCP = "network:dhcp"

INTERFACE_OWNERS = (INTERFACE, INTERFACE_HA, INTERFACE_DISTRIBUTED)


def interface_owner(router: models.Router) -> str:
    """The device_owner of a router's interfaces, by kind of router (as Neutron)."""
    if router.distributed:
        return INTERFACE_DISTRIBUTED
    if router.ha:
        return INTERFACE_HA
    return INTERFACE


def router_target(router: models.Router) -> dict[str, Any]:
    return {"project_id": router.project_id, "id": router.id}


def get_router(
    session: Session, ctx: context.RequestContext, router_id: str, lock: bool = False
) -> models.Router:
    """The router if ``ctx`` may see it (admins: any; others: their project's); else 404.

    ``lock``: hold the router's row for this transaction (changes of one router queue up
    on databases with row locks, so two gateways or interfaces never race in).
    """
    router = session.get(models.Router, router_id, with_for_update=lock or None)
    if router is None or (not common.is_admin(ctx) and router.project_id != ctx.project_id):
        raise errors.resource_not_found("router", router_id)
    return router


def router_bad_request(message: str) -> Any:
    return errors.bad_request(f"Bad router request: {message}.")


# --- addresses ------------------------------------------------------------------------------


def addresses(session: Session, port_ids: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
    """Each port's (subnet_id, ip_address) pairs, in the order of the subnets' creation."""
    wanted = list(port_ids)
    found: dict[str, list[tuple[str, str]]] = {i: [] for i in wanted}
    A, S = models.IPAllocation, models.Subnet
    for start in range(0, len(wanted), 500):
        rows = session.execute(
            select(A.port_id, A.subnet_id, A.ip_address)
            .join(S, S.id == A.subnet_id)
            .where(A.port_id.in_(wanted[start : start + 500]))
            .order_by(S.created_at, S.id, A.ip_address)
        )
        for port_id, subnet_id, ip in rows:
            found[port_id].append((subnet_id, ip))
    return found


def is_ipv4(address: str) -> bool:
    return ipaddress.ip_address(address).version == 4


def router_ports(
    session: Session, router_id: str, owners: Iterable[str] | None = None
) -> list[models.Port]:
    """The ports a router holds (optionally only those with the given device owners)."""
    query = (
        select(models.Port)
        .join(models.RouterPort, models.RouterPort.port_id == models.Port.id)
        .where(models.RouterPort.router_id == router_id)
        .order_by(models.Port.created_at, models.Port.id)
    )
    if owners is not None:
        query = query.where(models.RouterPort.port_type.in_(list(owners)))
    return list(session.scalars(query))


def subnets_of(session: Session, subnet_ids: Iterable[str]) -> list[models.Subnet]:
    wanted = list(dict.fromkeys(subnet_ids))
    if not wanted:
        return []
    return list(session.scalars(select(models.Subnet).where(models.Subnet.id.in_(wanted))))


def network_subnets(session: Session, network_id: str) -> list[models.Subnet]:
    return list(
        session.scalars(
            select(models.Subnet)
            .where(models.Subnet.network_id == network_id)
            .order_by(models.Subnet.created_at, models.Subnet.id)
        )
    )


# --- making and removing router-owned ports -------------------------------------------------


def create_port(
    session: Session,
    ctx: context.RequestContext,
    *,
    network: models.Network,
    project_id: str,
    device_id: str,
    device_owner: str,
    fixed_ips: list[dict[str, Any]] | None,
    router_id: str | None = None,
    status: str | None = None,
) -> models.Port:
    """A port owned by the L3 service, made by the ports module (MAC, IPAM, notify).

    Neutron counts such ports against no quota (its quotas apply at the API only).
    """
    spec: dict[str, Any] = {
        "name": "",
        "admin_state_up": True,
        "device_id": device_id,
        "device_owner": device_owner,
        "fixed_ips": fixed_ips,
    }
    if status is not None:
        spec["status"] = status
    port = ports.create_port_row(
        session, ctx, network, spec, project_id=project_id, check_quota=False
    )
    if router_id is not None:
        session.add(models.RouterPort(router_id=router_id, port_id=port.id, port_type=device_owner))
        session.flush()
    return port


def delete_port(session: Session, port: models.Port) -> None:
    """Remove an L3 port (its addresses go back to IPAM; agents are told)."""
    session.query(models.RouterPort).filter(models.RouterPort.port_id == port.id).delete()
    ports.delete_port_row(session, port)


def set_owner(
    session: Session,
    ctx: context.RequestContext,
    port: models.Port,
    device_id: str,
    device_owner: str,
) -> None:
    """Claim an existing port for a router (or change the kind of interface it is)."""
    ports.update_port_row(
        session, ctx, port, {"device_id": device_id, "device_owner": device_owner}
    )


def set_addresses(
    session: Session,
    ctx: context.RequestContext,
    port: models.Port,
    fixed_ips: list[dict[str, str]],
) -> None:
    """Give a router's port exactly these addresses (PUT semantics of ``fixed_ips``)."""
    ports.update_port_row(session, ctx, port, {"fixed_ips": fixed_ips})


def fixed_ips_of(session: Session, port: models.Port) -> list[dict[str, str]]:
    return [{"subnet_id": s, "ip_address": ip} for s, ip in addresses(session, [port.id])[port.id]]


def check_new_subnets(
    session: Session, router: models.Router, new_subnets: list[models.Subnet]
) -> None:
    """A router holds one port per subnet, and its subnets may not overlap (400)."""
    new_ids = {s.id for s in new_subnets}
    held = router_ports(session, router.id)
    pairs = addresses(session, [p.id for p in held])
    known: list[str] = []
    for port in held:
        for subnet_id, _ in pairs[port.id]:
            if subnet_id in new_ids:
                raise router_bad_request(f"Router already has a port on subnet {subnet_id}")
        if port.device_owner == GATEWAY:
            known += [s.id for s in network_subnets(session, port.network_id)]
        else:
            known += [subnet_id for subnet_id, _ in pairs[port.id]]
    for old in subnets_of(session, known):
        for new in new_subnets:
            old_net, new_net = ipaddress.ip_network(old.cidr), ipaddress.ip_network(new.cidr)
            if old_net.version == new_net.version and old_net.overlaps(new_net):
                raise router_bad_request(
                    f"Cidr {new.cidr} of subnet {new.id} overlaps with cidr {old.cidr} "
                    f"of subnet {old.id}"
                )
