"""Floating IP port forwardings (floating-ip-port-forwarding, -description, -detail):
``/v2.0/floatingips/{id}/port_forwardings``. A floating IP either follows one port
(1:1 NAT) or forwards some of its ports to internal addresses, never both."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stackbox import context, rest
from stackbox.network import attributes as A
from stackbox.network import (
    common,
    errors,
    floatingip_association,
    floatingips,
    models,
    notify,
    router_interfaces,
    router_ports,
)

RESOURCE = "port_forwarding"
PROTOCOLS = ("dccp", "icmp", "ipv6-icmp", "sctp", "tcp", "udp")
PORT = A.integer(1, 65535)

ATTRS = A.spec(
    A.Attr("id", sort=True),
    A.Attr("project_id", post=True, default=None, validate=A.name_string(255), filter=False),
    A.Attr("external_port", post=True, put=True, default=A.MISSING, validate=PORT, sort=True),
    A.Attr("internal_port", post=True, put=True, default=A.MISSING, validate=PORT, filter=False),
    A.Attr(
        "internal_ip_address",
        post=True,
        put=True,
        default=A.MISSING,
        validate=A.ip_address,
        filter=False,
    ),
    A.Attr(
        "protocol", post=True, put=True, default=A.MISSING, validate=A.one_of(*PROTOCOLS), sort=True
    ),
    A.Attr(
        "internal_port_id",
        post=True,
        put=True,
        default=A.MISSING,
        validate=A.uuid_string,
        sort=True,
    ),
    A.Attr("description", post=True, put=True, default="", validate=A.name_string(255)),
)


def _target(fip: models.FloatingIP) -> dict[str, Any]:
    return {"project_id": fip.project_id, "ext_parent:project_id": fip.project_id}


def _render(pf: models.PortForwarding) -> dict[str, Any]:
    return {
        "id": pf.id,
        "external_port": pf.external_port,
        "internal_port": pf.internal_port,
        "internal_ip_address": pf.internal_ip_address,
        "protocol": pf.protocol,
        "internal_port_id": pf.internal_port_id,
        "description": pf.description or "",
    }


def _bad(message: str) -> rest.BadRequest:
    return errors.bad_request(f"Bad port_forwarding request: {message}.")


def _get(session: Session, fip: models.FloatingIP, pf_id: str) -> models.PortForwarding:
    pf = session.get(models.PortForwarding, pf_id)
    if pf is None or pf.floatingip_id != fip.id:
        raise errors.not_found(
            "PortForwardingNotFound", f"Port Forwarding {pf_id} could not be found."
        )
    return pf


def _others(session: Session, pf_id: str | None, **where: Any) -> list[models.PortForwarding]:
    query = select(models.PortForwarding).filter_by(**where)
    return [pf for pf in session.scalars(query) if pf.id != pf_id]


def _check_collisions(
    session: Session, fip: models.FloatingIP, pf: dict[str, Any], pf_id: str | None
) -> None:
    """One external port per floating IP and protocol; one internal socket per rule."""
    for other in _others(session, pf_id, floatingip_id=fip.id, protocol=pf["protocol"]):
        if other.external_port == pf["external_port"]:
            raise _bad(
                "There is a port collision with the external_port_range. The following ranges "
                f"collide: {other.external_port}:{other.external_port} and "
                f"{pf['external_port']}:{pf['external_port']}"
            )
    for other in _others(
        session,
        pf_id,
        internal_port_id=pf["internal_port_id"],
        protocol=pf["protocol"],
        internal_ip_address=pf["internal_ip_address"],
    ):
        if other.internal_port == pf["internal_port"]:
            raise _bad(
                "There is a port collision with the internal_port_range. The following ranges "
                f"collide: {other.internal_port}:{other.internal_port} and "
                f"{pf['internal_port']}:{pf['internal_port']}"
            )


def _router_for(
    session: Session, ctx: context.RequestContext, fip: models.FloatingIP, pf: dict[str, Any]
) -> str:
    port = router_interfaces.get_port(session, ctx, pf["internal_port_id"])
    pairs = [(s, ip) for s, ip in router_ports.addresses(session, [port.id])[port.id]]
    ipv4 = [(s, ip) for s, ip in pairs if router_ports.is_ipv4(ip)]
    if not ipv4:
        raise _bad(f"Requested internal port {port.id} must allocate an IPv4 address at least")
    if not pf.get("internal_ip_address"):
        pf["internal_ip_address"] = ipv4[0][1]
    subnet_id = next((s for s, ip in ipv4 if ip == pf["internal_ip_address"]), None)
    if subnet_id is None:
        fixed = [{"subnet_id": s, "ip_address": ip} for s, ip in ipv4]
        raise _bad(
            f"Requested internal IP address {pf['internal_ip_address']} is not suitable for "
            f"internal neutron port {port.id}, as its fixed_ips are {fixed}"
        )
    subnet = session.get(models.Subnet, subnet_id)
    assert subnet is not None
    try:
        router_id = floatingip_association.router_for(
            session, port, subnet, fip.floating_network_id
        )
    except rest.NotFound:
        raise _bad(
            f"External network {fip.floating_network_id} is not reachable from subnet "
            f"{subnet_id}. Cannot set Port forwarding for port {port.id} with Floating IP "
            f"{fip.id}"
        ) from None
    if fip.router_id and fip.router_id != router_id:
        raise _bad(
            f"The Floating IP {fip.id} had been set on router {fip.router_id}, the internal "
            f"Neutron port {port.id} can not reach it"
        )
    return router_id


def _check_port_free(session: Session, pf: dict[str, Any]) -> None:
    bound = session.scalars(
        select(models.FloatingIP).where(models.FloatingIP.fixed_port_id == pf["internal_port_id"])
    ).first()
    if bound is not None:
        raise errors.in_use(
            "PortHasBindingFloatingIP",
            f"Cannot create port forwarding to floating IP {bound.floating_ip_address} "
            f"({bound.id}) with port {pf['internal_port_id']} using fixed IP "
            f"{pf['internal_ip_address']}, as that port already has a binding floating IP.",
        )


def _store(session: Session, pf: models.PortForwarding) -> None:
    try:
        with session.begin_nested():
            session.add(pf)
            session.flush()
    except IntegrityError:
        raise _bad(
            "A duplicate port forwarding entry with same attributes already exists, "
            f"conflicting values are {{'floatingip_id': '{pf.floatingip_id}', "
            f"'external_port': {pf.external_port}, 'protocol': '{pf.protocol}'}}"
        ) from None


def _parent(request: rest.ApiRequest, session: Session, action: str) -> models.FloatingIP:
    fip = floatingips.get_visible(
        session,
        request.context,
        request.path_params["floatingip_id"],
        lock=not action.startswith("get_"),
    )
    common.enforce(request, action, _target(fip), hide_missing=action.startswith("get_"))
    return fip


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    fip = _parent(request, session, "create_floatingip_port_forwarding")
    item = A.body_of(request, RESOURCE)
    spec = A.parse(ATTRS, item, create=True, resource=RESOURCE)
    _check_collisions(session, fip, spec, None)
    _check_port_free(session, spec)
    if fip.fixed_port_id:
        raise errors.in_use(
            "FloatingIPPortAlreadyAssociated",
            f"Cannot associate floating IP {fip.floating_ip_address} ({fip.id}) with port "
            f"{spec['internal_port_id']} using fixed IP {spec['internal_ip_address']}, as that "
            f"fixed IP already has a floating IP on external network {fip.floating_network_id}.",
        )
    router_id = _router_for(session, request.context, fip, spec)
    pf = models.PortForwarding(
        id=common.new_id(),
        floatingip_id=fip.id,
        internal_port_id=spec["internal_port_id"],
        internal_ip_address=spec["internal_ip_address"],
        internal_port=spec["internal_port"],
        external_port=spec["external_port"],
        protocol=spec["protocol"],
        description=spec["description"],
    )
    _store(session, pf)
    if fip.router_id != router_id:
        fip.router_id = router_id
        common.bump(fip)
    notify.router(session, router_id)
    return rest.ApiResponse(201, {RESOURCE: _render(pf)})


def list_forwardings(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    fip = _parent(request, session, "get_floatingip_port_forwarding")
    rows = session.scalars(
        select(models.PortForwarding).where(models.PortForwarding.floatingip_id == fip.id)
    )
    return common.collection(request, "port_forwardings", [_render(pf) for pf in rows], ATTRS)


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    fip = _parent(request, session, "get_floatingip_port_forwarding")
    pf = _get(session, fip, request.path_params["port_forwarding_id"])
    return {RESOURCE: common.fields_wanted(request, _render(pf))}


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    fip = _parent(request, session, "update_floatingip_port_forwarding")
    item = A.body_of(request, RESOURCE)
    spec = A.parse(ATTRS, item, create=False, resource=RESOURCE)
    pf = _get(session, fip, request.path_params["port_forwarding_id"])
    wanted = {**_render(pf), **spec}
    if "internal_port_id" in spec and spec["internal_port_id"] != pf.internal_port_id:
        _check_port_free(session, wanted)
        if "internal_ip_address" not in spec:
            wanted["internal_ip_address"] = None  # the new port's first IPv4 address
    router_id = _router_for(session, request.context, fip, wanted)
    _check_collisions(session, fip, wanted, pf.id)
    try:
        with session.begin_nested():
            for key in ATTRS:
                if key not in ("id", "project_id"):
                    setattr(pf, key, wanted[key])
            session.flush()
    except IntegrityError:
        raise _bad(
            "Another port forwarding entry with the same attributes already exists"
        ) from None
    if fip.router_id != router_id:
        fip.router_id = router_id
        common.bump(fip)
    notify.router(session, router_id)
    return {RESOURCE: _render(pf)}


def delete(request: rest.ApiRequest, session: Session) -> None:
    fip = _parent(request, session, "delete_floatingip_port_forwarding")
    pf = _get(session, fip, request.path_params["port_forwarding_id"])
    session.delete(pf)
    session.flush()
    if fip.router_id:
        notify.router(session, fip.router_id)
    remaining = session.scalar(
        select(models.PortForwarding.id).where(models.PortForwarding.floatingip_id == fip.id)
    )
    if not remaining:
        fip.router_id = None
        common.bump(fip)


BASE = "/v2.0/floatingips/{floatingip_id}/port_forwardings"
ROUTES = [
    rest.Route("POST", BASE, create),
    rest.Route("GET", BASE, list_forwardings),
    rest.Route("GET", BASE + "/{port_forwarding_id}", show),
    rest.Route("PUT", BASE + "/{port_forwarding_id}", update),
    rest.Route("DELETE", BASE + "/{port_forwarding_id}", delete),
]
