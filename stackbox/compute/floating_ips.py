"""The deprecated floating IP proxy (``os-floating-ips``, ``os-floating-ip-pools``, up to
2.35) and the ``addFloatingIp``/``removeFloatingIp`` server actions (up to 2.43): the
Networking service's floating IPs as Nova shows them.

A pool is an external network (by name or id; none given means DevStack's
``default_floating_pool``, ``public``). Allocating, releasing and (dis)associating go
through the Networking service's own handlers in-process with the caller's context
(Neutron's policy and quotas apply); Neutron's refusals become Nova's statuses: over
quota 403, no address left 404, an address that already has a floating IP 400.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import context, policy, rest
from stackbox.compute import common, errors, models, proxy_calls, server_schema, server_validation
from stackbox.compute import server_action_base as base
from stackbox.db import session as db_session
from stackbox.network import common as net_common
from stackbox.network import floatingips as net_fips
from stackbox.network import models as net
from stackbox.network import rbac

POLICY = "os_compute_api:os-floating-ips:"
DEFAULT_POOL = "public"
CREATE = {"type": ["object", "null"], "properties": {"pool": {"type": ["string", "null"]}}}
ADD = {
    "type": "object",
    "properties": {
        "address": server_schema.IP_ADDRESS,
        "fixed_address": server_schema.IP_ADDRESS,
    },
    "required": ["address"],
    "additionalProperties": False,
}
REMOVE = {
    "type": "object",
    "properties": {"address": server_schema.IP_ADDRESS},
    "required": ["address"],
    "additionalProperties": False,
}


# --- Neutron's rows as Nova's bodies ------------------------------------------------------------


def render(session: Session, fips: list[net.FloatingIP]) -> list[dict[str, Any]]:
    P, N = net.Port, net.Network
    port_ids = [f.fixed_port_id for f in fips if f.fixed_port_id]
    devices: dict[str, str] = {}
    if port_ids:
        rows = session.execute(select(P.id, P.device_id).where(P.id.in_(port_ids)))
        devices = {port_id: device for port_id, device in rows}
    network_ids = sorted({f.floating_network_id for f in fips})
    rows = session.execute(select(N.id, N.name).where(N.id.in_(network_ids)))
    names = {network_id: name for network_id, name in rows}
    return [
        {
            "id": f.id,
            "ip": f.floating_ip_address,
            "fixed_ip": f.fixed_ip_address,
            "instance_id": devices.get(f.fixed_port_id) if f.fixed_port_id else None,
            "pool": names.get(f.floating_network_id) or f.floating_network_id,
        }
        for f in fips
    ]


def _call(handler: Any, *args: Any, statuses: dict[int, int] | None = None) -> Any:
    try:
        return handler(*args)
    except policy.PolicyNotAuthorized as exc:
        raise errors.forbidden(str(exc)) from None
    except rest.ApiError as exc:
        raise proxy_calls.nova_error(exc, statuses) from None


def _gate(request: rest.ApiRequest, rule: str) -> None:
    proxy_calls.require_proxy(request)
    common.enforce(request, POLICY + rule)


def _get(session: Session, request: rest.ApiRequest, fip_id: str) -> net.FloatingIP:
    try:
        return net_fips.get_visible(session, request.context, fip_id)
    except rest.NotFound:
        raise errors.not_found(f"Floating IP not found for ID {fip_id}") from None


# --- os-floating-ips ----------------------------------------------------------------------------


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    _gate(request, "list")
    F = net.FloatingIP
    fips = list(
        session.scalars(
            select(F)
            .where(F.project_id == (request.context.project_id or ""))
            .order_by(F.created_at, F.id)
        )
    )
    return {"floating_ips": render(session, fips)}


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    _gate(request, "show")
    fip = _get(session, request, request.path_params["fip_id"])
    return {"floating_ip": render(session, [fip])[0]}


def external_networks(session: Session, ctx: context.RequestContext) -> list[net.Network]:
    """The pools: external networks the caller may see."""
    N = net.Network
    query = select(N).where(N.external.is_(True)).order_by(N.created_at, N.id)
    if not net_common.is_admin(ctx):
        query = query.where(rbac.network_clause(ctx))
    return list(session.scalars(query))


def _pool_id(session: Session, ctx: context.RequestContext, pool: str) -> str:
    """Nova's lookup of a pool by id (when it looks like one) or by name."""
    by_id = server_validation.is_uuid_like(pool)
    found = [
        n.id for n in external_networks(session, ctx) if (n.id == pool if by_id else n.name == pool)
    ]
    if not found:
        raise errors.not_found("Floating IP pool not found.")
    if len(found) > 1:
        raise rest.ApiError(f"Multiple floating IP pools matches found for name '{pool}'")
    return found[0]


def create(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    _gate(request, "create")
    body = request.body
    server_validation.validate(CREATE, body)
    pool = (body or {}).get("pool")
    network_id = _pool_id(session, request.context, pool or DEFAULT_POOL)
    sub = proxy_calls.sub_request(request, body={"floatingip": {"floating_network_id": network_id}})
    where = f" in pool {pool}" if pool else ""
    try:
        answer = net_fips.create(sub, session)
    except policy.PolicyNotAuthorized as exc:
        raise errors.forbidden(str(exc)) from None
    except rest.ApiError as exc:
        if exc.kind == "OverQuota":
            raise errors.forbidden(f"IP allocation over quota{where}.") from None
        if exc.kind in ("ExternalIpAddressExhausted", "IpAddressGenerationFailure"):
            message = f"No more floating IPs{where}." if pool else "No more floating IPs available."
            raise errors.not_found(message) from None
        raise proxy_calls.nova_error(exc) from None
    fip = session.get(net.FloatingIP, answer.body["floatingip"]["id"])
    assert fip is not None
    return {"floating_ip": render(session, [fip])[0]}


def delete(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    _gate(request, "delete")
    fip = _get(session, request, request.path_params["fip_id"])
    sub = proxy_calls.sub_request(request, path_params={"floatingip_id": fip.id})
    _call(net_fips.delete, sub, session)
    return rest.ApiResponse(202)


def pools(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    proxy_calls.require_proxy(request)
    common.enforce(request, "os_compute_api:os-floating-ip-pools")
    networks = external_networks(session, request.context)
    return {"floating_ip_pools": [{"name": n.name or n.id} for n in networks]}


# --- association (the server actions) -----------------------------------------------------------


def _fixed_ips(session: Session, server: models.Server) -> list[tuple[str, str]]:
    """(port id, address) of the server's ports, in port order."""
    P, A = net.Port, net.IPAllocation
    return [
        (port_id, address)
        for port_id, address in session.execute(
            select(P.id, A.ip_address)
            .join(A, A.port_id == P.id)
            .where(P.device_id == server.id)
            .order_by(P.created_at, P.id, A.ip_address)
        )
    ]


def by_address(session: Session, ctx: context.RequestContext, address: str) -> net.FloatingIP:
    """The caller's floating IP with this address (404 "floating IP not found")."""
    F = net.FloatingIP
    query = select(F).where(F.floating_ip_address == address)
    if not net_common.is_admin(ctx):
        query = query.where(F.project_id == (ctx.project_id or ""))
    found = list(session.scalars(query))
    if not found:
        raise errors.not_found("floating IP not found")
    if len(found) > 1:
        raise errors.conflict(f"Multiple floating IPs are found for address {address}.")
    return found[0]


def associate(
    session: Session,
    request: rest.ApiRequest,
    server: models.Server,
    address: str,
    fixed_address: str | None = None,
) -> None:
    """Point the floating IP ``address`` at one of the server's fixed addresses (its first
    IPv4 one unless ``fixed_address`` says which), as Nova's addFloatingIp does."""
    fixed = _fixed_ips(session, server)
    if not fixed:
        raise errors.bad_request("Instance network is not ready yet")
    if fixed_address:
        port_id = next((p for p, a in fixed if a == fixed_address), None)
        if port_id is None:
            raise errors.bad_request("Specified fixed address not assigned to instance")
    else:
        first = next(((p, a) for p, a in fixed if ipaddress.ip_address(a).version == 4), None)
        if first is None:
            raise errors.bad_request(
                f"Unable to associate floating IP {address} to any fixed IPs for instance "
                f"{server.id}. Instance has no fixed IPv4 addresses to associate."
            )
        port_id, fixed_address = first
    fip = by_address(session, request.context, address)
    sub = proxy_calls.sub_request(
        request,
        path_params={"floatingip_id": fip.id},
        body={"floatingip": {"port_id": port_id, "fixed_ip_address": fixed_address}},
    )
    try:
        net_fips.update(sub, session)
    except policy.PolicyNotAuthorized as exc:
        raise errors.forbidden(str(exc)) from None
    except rest.Conflict as exc:
        raise errors.bad_request(exc.message) from None
    except rest.ApiError as exc:
        raise errors.bad_request(
            f"Unable to associate floating IP {address} to fixed IP {fixed_address} for "
            f"instance {server.id}. Error: {exc.message}"
        ) from None


def disassociate(session: Session, request: rest.ApiRequest, server_id: str, address: str) -> None:
    """Let go of the floating IP ``address`` if the server ``server_id`` holds it (409 if
    it does not), as Nova's removeFloatingIp does."""
    fip = by_address(session, request.context, address)
    holder = None
    if fip.fixed_port_id:
        port = session.get(net.Port, fip.fixed_port_id)
        if port is not None and port.device_id:
            holder = common.get_server(session, request, port.device_id)
    common.enforce(
        request, POLICY + "remove", {"project_id": holder.project_id} if holder else None
    )
    if holder is None or holder.id != server_id:
        raise errors.conflict(f"Floating IP {address} is not associated with instance {server_id}.")
    sub = proxy_calls.sub_request(
        request, path_params={"floatingip_id": fip.id}, body={"floatingip": {"port_id": None}}
    )
    _call(net_fips.update, sub, session)


def add_floating_ip(
    request: rest.ApiRequest, db: db_session.Database, server_id: str
) -> base.Result:
    body = base.member(request, "addFloatingIp", ADD)

    def apply(session: Session) -> base.Result:
        server = base.load(session, request, server_id, POLICY + "add", with_user=False)
        associate(session, request, server, body["address"], body.get("fixed_address"))
        return base.accepted()

    return db.run(apply, write=True)


def remove_floating_ip(
    request: rest.ApiRequest, db: db_session.Database, server_id: str
) -> base.Result:
    body = base.member(request, "removeFloatingIp", REMOVE)

    def apply(session: Session) -> base.Result:
        disassociate(session, request, server_id, body["address"])
        return base.accepted()

    return db.run(apply, write=True)


# For server_actions' dispatcher (Nova removed both at 2.44).
ACTIONS: list[base.Action] = [
    base.Action("addFloatingIp", add_floating_ip, until="2.43"),
    base.Action("removeFloatingIp", remove_floating_ip, until="2.43"),
]

ROUTES: list[rest.Route] = [
    rest.Route("GET", "/v2.1/os-floating-ips", index),
    rest.Route("POST", "/v2.1/os-floating-ips", create),
    rest.Route("GET", "/v2.1/os-floating-ips/{fip_id}", show),
    rest.Route("DELETE", "/v2.1/os-floating-ips/{fip_id}", delete),
    rest.Route("GET", "/v2.1/os-floating-ip-pools", pools),
]
