"""Which port, address and router a floating IP serves (Neutron's association rules).

A floating IP on external network E reaches fixed address A of port P through a
router with a gateway on E and an interface on A's subnet; without one the
association is 404 ExternalGatewayForFloatingIPNotFound.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased

from stackbox import context, rest
from stackbox.network import common, errors, models, router_interfaces, router_ports


@dataclasses.dataclass(frozen=True)
class Association:
    port_id: str | None = None
    fixed_ip_address: str | None = None
    router_id: str | None = None


def bad_request(message: str) -> rest.BadRequest:
    return errors.bad_request(f"Bad floatingip request: {message}.")


def router_for(
    session: Session, port: models.Port, subnet: models.Subnet, external_network_id: str
) -> str:
    """The router joining the port's subnet to the external network (404 when none).

    Among several, the one whose interface holds the subnet's gateway address wins.
    """
    interface = aliased(models.Port)
    gateway = aliased(models.Port)
    A = models.IPAllocation
    rows = session.execute(
        select(models.RouterPort.router_id, A.ip_address)
        .join(interface, interface.id == models.RouterPort.port_id)
        .join(A, A.port_id == interface.id)
        .join(
            gateway,
            and_(
                gateway.device_id == models.RouterPort.router_id,
                gateway.network_id == external_network_id,
                gateway.device_owner == router_ports.GATEWAY,
            ),
        )
        .where(
            interface.network_id == port.network_id,
            models.RouterPort.port_type.in_(router_ports.INTERFACE_OWNERS),
            A.subnet_id == subnet.id,
        )
        .order_by(models.RouterPort.router_id)
        .distinct()
    ).all()
    for router_id, address in rows:
        if address == subnet.gateway_ip:
            return str(router_id)
    if rows:
        return str(rows[0][0])
    raise errors.not_found(
        "ExternalGatewayForFloatingIPNotFound",
        f"External network {external_network_id} is not reachable from subnet {subnet.id}.  "
        f"Therefore, cannot associate Port {port.id} with a Floating IP.",
    )


def _internal(
    session: Session,
    ctx: context.RequestContext,
    fip: models.FloatingIP,
    port_id: str,
    fixed_ip: str | None,
) -> tuple[models.Port, models.Subnet, str]:
    port = router_interfaces.get_port(session, ctx, port_id)
    if port.project_id != fip.project_id and not common.is_admin(ctx):
        raise bad_request(
            f"Cannot process floating IP association with Port {port_id}, since that port is "
            "owned by a different project"
        )
    if port.device_owner == router_ports.DHCP:
        raise bad_request(f"Port {port_id} is unable to be assigned a floating IP")
    pairs = router_ports.addresses(session, [port.id])[port.id]
    if fixed_ip:
        if not router_ports.is_ipv4(fixed_ip):
            raise bad_request(
                f"Cannot process floating IP association with {fixed_ip}, since that is not "
                "an IPv4 address"
            )
        subnet_id = next((s for s, ip in pairs if ip == fixed_ip), None)
        if subnet_id is None:
            raise bad_request(f"Port {port.id} does not have fixed ip {fixed_ip}")
    else:
        ipv4 = [(s, ip) for s, ip in pairs if router_ports.is_ipv4(ip)]
        if not ipv4:
            raise bad_request(
                f"Cannot add floating IP to port {port.id} that has no fixed IPv4 addresses"
            )
        if len(ipv4) > 1:
            raise bad_request(
                f"Port {port.id} has multiple fixed IPv4 addresses.  Must provide a specific "
                "IPv4 address when assigning a floating IP"
            )
        subnet_id, fixed_ip = ipv4[0]
    subnet = session.get(models.Subnet, subnet_id)
    assert subnet is not None
    return port, subnet, fixed_ip


def _check_forwardings(session: Session, fip: models.FloatingIP, port: models.Port) -> None:
    """A floating IP either forwards ports or follows one port, never both."""
    has_own = session.scalar(
        select(models.PortForwarding.id).where(models.PortForwarding.floatingip_id == fip.id)
    )
    if has_own:
        raise errors.in_use(
            "FipInUseByPortForwarding",
            f"Floating IP {fip.id} in use by Port Forwarding resources.",
        )
    forwarded_via = session.scalar(
        select(models.FloatingIP.router_id)
        .join(models.PortForwarding, models.PortForwarding.floatingip_id == models.FloatingIP.id)
        .where(models.PortForwarding.internal_port_id == port.id)
    )
    router = session.get(models.Router, forwarded_via) if forwarded_via else None
    if router is not None and router.distributed:
        raise errors.bad_request(
            f"Cannot associate floating IP to port {port.id} because it already has a Port "
            "Forwarding binding.",
            kind="PortHasPortForwarding",
        )


def resolve(
    session: Session, ctx: context.RequestContext, fip: models.FloatingIP, request: dict[str, Any]
) -> Association:
    """The association a create/update request asks for (``request``: the given attributes)."""
    if request.get("fixed_ip_address") and not request.get("port_id"):
        raise bad_request("fixed_ip_address cannot be specified without a port_id")
    port_id = request.get("port_id")
    if port_id is None and "port_id" not in request and fip.fixed_port_id:
        port_id = fip.fixed_port_id  # an update that leaves the port keeps (re-checks) it
    if not port_id:
        # A floating IP serving port forwardings stays on their router.
        return Association(router_id=None if fip.fixed_port_id else fip.router_id)
    port, subnet, fixed_ip = _internal(session, ctx, fip, port_id, request.get("fixed_ip_address"))
    if request.get("port_id"):
        _check_forwardings(session, fip, port)
    router_id = router_for(session, port, subnet, fip.floating_network_id)
    if port.id != fip.fixed_port_id:
        taken = session.scalar(
            select(models.FloatingIP.id).where(
                models.FloatingIP.fixed_port_id == port.id,
                models.FloatingIP.floating_network_id == fip.floating_network_id,
                models.FloatingIP.fixed_ip_address == fixed_ip,
                models.FloatingIP.id != fip.id,
            )
        )
        if taken:
            raise errors.in_use(
                "FloatingIPPortAlreadyAssociated",
                f"Cannot associate floating IP {fip.floating_ip_address} ({fip.id}) with port "
                f"{port.id} using fixed IP {fixed_ip}, as that fixed IP already has a floating "
                f"IP on external network {fip.floating_network_id}.",
            )
    return Association(port.id, fixed_ip, router_id)


def apply(fip: models.FloatingIP, association: Association) -> set[str]:
    """Store the association; the routers whose NAT changes (old and new)."""
    touched = {r for r in (fip.router_id, association.router_id) if r}
    fip.fixed_port_id = association.port_id
    fip.fixed_ip_address = association.fixed_ip_address
    fip.router_id = association.router_id
    return touched
