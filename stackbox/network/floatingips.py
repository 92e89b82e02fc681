"""Floating IPs (router's floatingips, fip-port-details, expose-port-forwarding-in-fip,
floatingip-pools, dns-integration's names): addresses on external networks, 1:1 NAT to a
port's fixed address through a router, and the hooks the ports module calls when ports go
or change."""

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
    floatingip_dns,
    models,
    networks,
    notify,
    quotas,
    rbac,
    router_ports,
)

RESOURCE = "floatingip"
ATTRS = A.spec(
    A.Attr("id", sort=True),
    A.Attr(
        "floating_ip_address",
        post=True,
        default=None,
        validate=A.ip_address_or_none,
        policy=True,
        sort=True,
    ),
    A.Attr("subnet_id", post=True, default=None, validate=A.uuid_or_none, filter=False),
    A.Attr("floating_network_id", post=True, default=A.MISSING, validate=A.uuid_string, sort=True),
    A.Attr("router_id", sort=True),
    A.Attr("port_id", post=True, put=True, default=None, validate=A.uuid_or_none),
    A.Attr(
        "fixed_ip_address",
        post=True,
        put=True,
        default=None,
        validate=A.ip_address_or_none,
        sort=True,
    ),
    A.Attr(
        "project_id", post=True, default=None, validate=A.name_string(255), sort=True, owner=True
    ),
    A.Attr(
        "tenant_id", post=True, default=None, validate=A.name_string(255), sort=True, owner=True
    ),
    A.Attr("status", sort=True),
    A.Attr("description", post=True, put=True, default="", validate=A.name_string(255), sort=True),
    A.Attr("dns_name", post=True, default="", validate=floatingip_dns.dns_name),
    A.Attr("dns_domain", post=True, default="", validate=floatingip_dns.dns_domain),
    A.Attr("port_details", filter=False),
    A.Attr("port_forwardings", filter=False),
    A.Attr("revision_number", sort=True),
    A.Attr("created_at", sort=True),
    A.Attr("updated_at", sort=True),
    A.Attr("tags", filter=False),
)


def target(fip: models.FloatingIP) -> dict[str, Any]:
    return {"project_id": fip.project_id, "id": fip.id}


def get_visible(
    session: Session, ctx: context.RequestContext, fip_id: str, lock: bool = False
) -> models.FloatingIP:
    fip = session.get(models.FloatingIP, fip_id, with_for_update=lock or None)
    if fip is None or (not common.is_admin(ctx) and fip.project_id != ctx.project_id):
        raise errors.resource_not_found(RESOURCE, fip_id)
    return fip


def _port_details(port: models.Port | None) -> dict[str, Any] | None:
    if port is None:
        return None
    return {
        "name": port.name,
        "network_id": port.network_id,
        "mac_address": port.mac_address,
        "admin_state_up": port.admin_state_up,
        "status": port.status,
        "device_id": port.device_id,
        "device_owner": port.device_owner,
    }


def render_many(session: Session, fips: list[models.FloatingIP]) -> list[dict[str, Any]]:
    ids = [f.id for f in fips]
    tags = common.tags_of(session, RESOURCE, ids)
    port_ids = [f.fixed_port_id for f in fips if f.fixed_port_id]
    fixed_ports: dict[str, models.Port] = {}
    forwardings: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    for start in range(0, max(len(ids), len(port_ids)), 500):
        chunk = port_ids[start : start + 500]
        if chunk:
            for port in session.scalars(select(models.Port).where(models.Port.id.in_(chunk))):
                fixed_ports[port.id] = port
        for pf in session.scalars(
            select(models.PortForwarding)
            .where(models.PortForwarding.floatingip_id.in_(ids[start : start + 500]))
            .order_by(models.PortForwarding.protocol, models.PortForwarding.external_port)
        ):
            forwardings[pf.floatingip_id].append(
                {
                    "id": pf.id,
                    "internal_ip_address": pf.internal_ip_address,
                    "protocol": pf.protocol,
                    "internal_port": pf.internal_port,
                    "external_port": pf.external_port,
                    "internal_port_id": pf.internal_port_id,
                }
            )
    bodies = []
    for fip in fips:
        body = common.standard(fip, tags[fip.id])
        body.update(
            {
                "floating_ip_address": fip.floating_ip_address,
                "floating_network_id": fip.floating_network_id,
                "router_id": fip.router_id,
                "port_id": fip.fixed_port_id,
                "fixed_ip_address": fip.fixed_ip_address,
                "status": fip.status,
                "dns_name": fip.dns_name or "",
                "dns_domain": fip.dns_domain or "",
                "port_details": _port_details(fixed_ports.get(fip.fixed_port_id or "")),
                "port_forwardings": forwardings[fip.id],
            }
        )
        bodies.append(body)
    return bodies


def render(session: Session, fip: models.FloatingIP) -> dict[str, Any]:
    return render_many(session, [fip])[0]


def _external_network(
    session: Session, ctx: context.RequestContext, network_id: str
) -> models.Network:
    network = networks.get_visible(session, ctx, network_id)
    if not network.external:
        raise floatingip_association.bad_request(
            f"Network {network_id} is not a valid external network"
        )
    if not any(s.ip_version == 4 for s in router_ports.network_subnets(session, network_id)):
        raise floatingip_association.bad_request(
            f"Network {network_id} does not contain any IPv4 subnet"
        )
    return network


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    item = A.body_of(request, RESOURCE)
    spec = A.parse(ATTRS, item, create=True, resource=RESOURCE)
    ctx = request.context
    project_id = spec.get("project_id") or spec.get("tenant_id") or ctx.project_id or ""
    given = [k for k in item if k not in ("project_id", "tenant_id")]
    common.enforce(request, "create_floatingip", {"project_id": project_id}, ATTRS, given)
    if project_id != ctx.project_id and not common.is_admin(ctx):
        raise errors.forbidden("(create_floatingip) is disallowed by policy")
    network = _external_network(session, ctx, spec["floating_network_id"])
    quotas.check(session, project_id, RESOURCE)
    fip = models.FloatingIP(
        floating_network_id=network.id,
        status="DOWN",
        description=spec["description"],
    )
    # Neutron records a floating IP's DNS name only with a domain to put it in.
    if spec["dns_name"] and spec["dns_domain"]:
        fip.dns_name, fip.dns_domain = spec["dns_name"], spec["dns_domain"]
    common.stamp_new(fip, ctx, project_id)
    wanted = {
        key: spec[attr]
        for key, attr in (("subnet_id", "subnet_id"), ("ip_address", "floating_ip_address"))
        if spec[attr]
    }
    port = router_ports.create_port(
        session,
        ctx,
        network=network,
        project_id="",
        device_id=fip.id,
        device_owner=router_ports.FLOATINGIP,
        fixed_ips=[wanted] if wanted else None,
        status="N/A",
    )
    address = next(
        (ip for _, ip in router_ports.addresses(session, [port.id])[port.id] if _v4(ip)), None
    )
    if address is None:
        raise errors.bad_request(
            f"Unable to find any IP address on external network {network.id}.",
            kind="ExternalIpAddressExhausted",
        )
    fip.floating_ip_address = address
    fip.floating_port_id = port.id
    association = floatingip_association.resolve(session, ctx, fip, spec)
    touched = _save_association(session, fip, association, new=True)
    for router_id in touched:
        notify.router(session, router_id)
    return rest.ApiResponse(201, {RESOURCE: render(session, fip)})


def _v4(address: str) -> bool:
    return router_ports.is_ipv4(address)


def _save_association(
    session: Session,
    fip: models.FloatingIP,
    association: floatingip_association.Association,
    new: bool,
) -> set[str]:
    """Write the floating IP with its association; the routers whose NAT changes.

    The database keeps one floating IP per fixed address: one that a concurrent request
    bound first makes this one 409, as the check in ``resolve`` would have.
    """
    try:
        with session.begin_nested():
            touched = floatingip_association.apply(fip, association)
            if new:
                session.add(fip)
            else:
                common.bump(fip)
            session.flush()
    except IntegrityError:
        raise errors.in_use(
            "FloatingIPPortAlreadyAssociated",
            f"Cannot associate floating IP {fip.floating_ip_address} ({fip.id}) with port "
            f"{association.port_id} using fixed IP {association.fixed_ip_address}, as that "
            "fixed IP already has a floating IP on external network "
            f"{fip.floating_network_id}.",
        ) from None
    return touched


def list_floatingips(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ctx = request.context
    query = select(models.FloatingIP)
    if not common.is_admin(ctx):
        query = query.where(models.FloatingIP.project_id == (ctx.project_id or ""))
    fips = list(session.scalars(query))
    return common.collection(request, "floatingips", render_many(session, fips), ATTRS)


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    fip = get_visible(session, request.context, request.path_params["floatingip_id"])
    common.enforce(request, "get_floatingip", target(fip), hide_missing=True)
    return {RESOURCE: common.fields_wanted(request, render(session, fip))}


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    item = A.body_of(request, RESOURCE)
    spec = A.parse(ATTRS, item, create=False, resource=RESOURCE)
    ctx = request.context
    fip = get_visible(session, ctx, request.path_params["floatingip_id"], lock=True)
    common.enforce(request, "update_floatingip", target(fip), ATTRS, item)
    common.check_revision(request, fip)
    association = floatingip_association.resolve(session, ctx, fip, spec)
    if "description" in spec:
        fip.description = spec["description"]
    touched = _save_association(session, fip, association, new=False)
    for router_id in touched:
        notify.router(session, router_id)
    return {RESOURCE: render(session, fip)}


def _delete_row(session: Session, fip: models.FloatingIP) -> None:
    if fip.router_id:
        notify.router(session, fip.router_id)
    port = session.get(models.Port, fip.floating_port_id)
    common.drop_tags(session, RESOURCE, fip.id)
    session.delete(fip)
    session.flush()
    if port is not None:
        router_ports.delete_port(session, port)


def delete(request: rest.ApiRequest, session: Session) -> None:
    fip = get_visible(session, request.context, request.path_params["floatingip_id"])
    common.enforce(request, "delete_floatingip", target(fip))
    common.check_revision(request, fip)
    if session.scalar(
        select(models.PortForwarding.id).where(models.PortForwarding.floatingip_id == fip.id)
    ):
        raise errors.in_use(
            "FipInUseByPortForwarding", f"Floating IP {fip.id} in use by Port Forwarding resources."
        )
    _delete_row(session, fip)


# --- hooks for the ports and networks modules ------------------------------------------------


def port_deleting(session: Session, ctx: context.RequestContext, port_id: str) -> None:
    """Before a port goes: its floating IPs let go of it, its port forwardings go.

    A member may not (by deleting a port) disassociate another project's floating
    IP from it: 409 FipAssociated, as Neutron.
    """
    fips = list(
        session.scalars(select(models.FloatingIP).where(models.FloatingIP.fixed_port_id == port_id))
    )
    if not common.is_admin(ctx) and any(f.project_id != ctx.project_id for f in fips):
        raise errors.in_use(
            "FipAssociated",
            f"Unable to complete the operation on port {port_id} because the port still has "
            "an associated floating IP.",
        )
    for fip in fips:
        touched = floatingip_association.apply(fip, floatingip_association.Association())
        common.bump(fip)
        for router_id in touched:
            notify.router(session, router_id)
    _drop_forwardings(session, port_id, keep_ips=set())


def port_fixed_ips_changing(
    session: Session, port_id: str, new_fixed_ips: list[dict[str, Any]]
) -> None:
    """Before a port's fixed IPs change: an address a floating IP uses must stay (400);
    port forwardings to addresses the port gives up go."""
    kept = {f["ip_address"] for f in new_fixed_ips if f.get("ip_address")}
    used = session.scalar(
        select(models.FloatingIP.fixed_ip_address).where(
            models.FloatingIP.fixed_port_id == port_id,
            models.FloatingIP.fixed_ip_address.is_not(None),
        )
    )
    if used and used not in kept:
        raise errors.bad_request(
            f"Bad port request: Cannot update the fixed_ips of the port {port_id}, because its "
            "original fixed_ip has been associated to a floating ip."
        )
    _drop_forwardings(session, port_id, keep_ips=kept)


def _drop_forwardings(session: Session, port_id: str, keep_ips: set[str]) -> None:
    for pf in list(
        session.scalars(
            select(models.PortForwarding).where(models.PortForwarding.internal_port_id == port_id)
        )
    ):
        if pf.internal_ip_address in keep_ips:
            continue
        fip = session.get(models.FloatingIP, pf.floatingip_id)
        session.delete(pf)
        session.flush()
        if fip is not None:
            if fip.router_id:
                notify.router(session, fip.router_id)
            others = session.scalar(
                select(models.PortForwarding.id).where(
                    models.PortForwarding.floatingip_id == fip.id
                )
            )
            if not others:
                fip.router_id = None
            common.bump(fip)


def network_deleting(session: Session, network_id: str) -> None:
    """Before an external network goes: its unassociated floating IPs go with it."""
    for fip in list(
        session.scalars(
            select(models.FloatingIP).where(
                models.FloatingIP.floating_network_id == network_id,
                models.FloatingIP.fixed_port_id.is_(None),
            )
        )
    ):
        session.query(models.PortForwarding).filter(
            models.PortForwarding.floatingip_id == fip.id
        ).delete()
        _delete_row(session, fip)


def set_status(session: Session, fip_id: str, status: str) -> models.FloatingIP | None:
    """For agents reporting a floating IP's NAT in place (ACTIVE), gone (DOWN) or failed."""
    fip = session.get(models.FloatingIP, fip_id)
    if fip is not None and fip.status != status:
        fip.status = status
        common.bump(fip)
    return fip


# --- floating IP pools ----------------------------------------------------------------------

POOL_ATTRS = A.spec(
    A.Attr("subnet_id", sort=True),
    A.Attr("subnet_name", sort=True),
    A.Attr("network_id", sort=True),
    A.Attr("cidr", sort=True),
    A.Attr("project_id", sort=True),
)


def list_pools(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ctx = request.context
    common.enforce(request, "get_floatingip_pool", {"project_id": ctx.project_id})
    query = (
        select(models.Subnet)
        .join(models.Network, models.Network.id == models.Subnet.network_id)
        .where(models.Network.external.is_(True), models.Subnet.ip_version == 4)
    )
    if not common.is_admin(ctx):
        query = query.where(rbac.network_clause(ctx))
    pools = [
        {
            "id": s.id,
            "subnet_id": s.id,
            "subnet_name": s.name,
            "network_id": s.network_id,
            "cidr": s.cidr,
            "project_id": s.project_id,
        }
        for s in session.scalars(query)
    ]
    body = common.collection(request, "floatingip_pools", pools, POOL_ATTRS)
    for pool in body["floatingip_pools"]:
        pool.pop("id", None)
    return body


ROUTES = [
    rest.Route("POST", "/v2.0/floatingips", create),
    rest.Route("GET", "/v2.0/floatingips", list_floatingips),
    rest.Route("GET", "/v2.0/floatingips/{floatingip_id}", show),
    rest.Route("PUT", "/v2.0/floatingips/{floatingip_id}", update),
    rest.Route("DELETE", "/v2.0/floatingips/{floatingip_id}", delete),
    rest.Route("GET", "/v2.0/floatingip_pools", list_pools),
]
