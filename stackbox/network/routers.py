"""Routers (router, extraroute, extraroute-atomic, ext-gw-mode, dvr, l3-ha,
router_availability_zone): create/list/show/update/delete and the extra-route actions.

Gateways live in ``router_gateway``, interfaces in ``router_interfaces``, routes in
``router_routes``; their routes are registered here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import context, rest
from stackbox.network import attributes as A
from stackbox.network import (
    availability_zones,
    common,
    errors,
    models,
    notify,
    quotas,
    router_gateway,
    router_interfaces,
    router_ports,
    router_routes,
)

RESOURCE = "router"


def _boolean_or_none(value: Any) -> bool | None:
    return None if value is None else A.boolean(value)


ATTRS = A.spec(
    A.Attr("id", sort=True),
    A.Attr("name", post=True, put=True, default="", validate=A.name_string(255), sort=True),
    A.Attr("description", post=True, put=True, default="", validate=A.name_string(255), sort=True),
    A.Attr(
        "project_id", post=True, default=None, validate=A.name_string(255), sort=True, owner=True
    ),
    A.Attr(
        "tenant_id", post=True, default=None, validate=A.name_string(255), sort=True, owner=True
    ),
    A.Attr("admin_state_up", post=True, put=True, default=True, validate=A.boolean, sort=True),
    A.Attr("status", sort=True),
    A.Attr(
        "external_gateway_info",
        post=True,
        put=True,
        default=None,
        validate=router_gateway.validate_info,
        policy=True,
        filter=False,
    ),
    A.Attr("routes", put=True, validate=router_routes.validate, filter=False),
    A.Attr(
        "distributed", post=True, put=True, default=None, validate=_boolean_or_none, policy=True
    ),
    A.Attr("ha", post=True, put=True, default=None, validate=_boolean_or_none, policy=True),
    A.Attr(
        "availability_zone_hints",
        post=True,
        default=[],
        validate=A.list_of(A.name_string(255)),
        filter=False,
    ),
    A.Attr("availability_zones", filter=False),
    A.Attr("revision_number", sort=True),
    A.Attr("created_at", sort=True),
    A.Attr("updated_at", sort=True),
    A.Attr("tags", filter=False),
)


def _zones(session: Session, router_ids: list[str]) -> dict[str, list[str]]:
    """The zones of the L3 agents hosting each router (Neutron's router AZs)."""
    found: dict[str, set[str]] = {i: set() for i in router_ids}
    for start in range(0, len(router_ids), 500):
        for router_id, zone in session.execute(
            select(models.RouterL3Agent.router_id, models.Agent.availability_zone)
            .join(models.Agent, models.Agent.id == models.RouterL3Agent.agent_id)
            .where(models.RouterL3Agent.router_id.in_(router_ids[start : start + 500]))
        ):
            if zone:
                found[router_id].add(zone)
    return {i: sorted(z) for i, z in found.items()}


def get_visible(session: Session, ctx: context.RequestContext, router_id: str) -> models.Router:
    """The router if ``ctx`` may see it; 404 (RouterNotFound) otherwise."""
    return router_ports.get_router(session, ctx, router_id)


def render_many(session: Session, routers: list[models.Router]) -> list[dict[str, Any]]:
    ids = [r.id for r in routers]
    tags = common.tags_of(session, RESOURCE, ids)
    routes = router_routes.routes_of(session, ids)
    gw_ids = [r.gw_port_id for r in routers if r.gw_port_id]
    gw_networks: dict[str, str] = {}
    for start in range(0, len(gw_ids), 500):
        for port_id, network_id in session.execute(
            select(models.Port.id, models.Port.network_id).where(
                models.Port.id.in_(gw_ids[start : start + 500])
            )
        ):
            gw_networks[port_id] = network_id
    gw_pairs = router_ports.addresses(session, gw_ids)
    zones = _zones(session, ids)
    bodies = []
    for router in routers:
        body = common.standard(router, tags[router.id])
        gw = router.gw_port_id
        body.update(
            {
                "name": router.name,
                "admin_state_up": router.admin_state_up,
                "status": router.status,
                "external_gateway_info": router_gateway.render(
                    router, gw_networks.get(gw) if gw else None, gw_pairs.get(gw or "", [])
                ),
                "routes": routes[router.id],
                "distributed": router.distributed,
                "ha": router.ha,
                "availability_zone_hints": list(router.availability_zone_hints or []),
                "availability_zones": zones[router.id],
            }
        )
        bodies.append(body)
    return bodies


def render(session: Session, router: models.Router) -> dict[str, Any]:
    return render_many(session, [router])[0]


def _shown(request: rest.ApiRequest, router: models.Router, body: dict[str, Any]) -> dict[str, Any]:
    return common.visible_fields(
        request, "get_router", ATTRS, router_ports.router_target(router), body
    )


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    item = A.body_of(request, RESOURCE)
    spec = A.parse(ATTRS, item, create=True, resource=RESOURCE)
    ctx = request.context
    project_id = spec.get("project_id") or spec.get("tenant_id") or ctx.project_id or ""
    target = {"project_id": project_id}
    given = [k for k in item if k not in ("project_id", "tenant_id")]
    if not spec["external_gateway_info"]:
        given = [k for k in given if k != "external_gateway_info"]
    common.enforce(request, "create_router", target, ATTRS, given)
    router_gateway.enforce_info(request, "create_router", target, spec["external_gateway_info"])
    if project_id != ctx.project_id and not common.is_admin(ctx):
        raise errors.forbidden("(create_router) is disallowed by policy")
    availability_zones.validate(session, RESOURCE, spec["availability_zone_hints"])
    quotas.check(session, project_id, RESOURCE)
    router = models.Router(
        name=spec["name"],
        description=spec["description"],
        admin_state_up=spec["admin_state_up"],
        status="ACTIVE",
        enable_snat=True,
        distributed=bool(spec["distributed"]),
        ha=bool(spec["ha"]),
        availability_zone_hints=spec["availability_zone_hints"],
    )
    common.stamp_new(router, ctx, project_id)
    session.add(router)
    session.flush()
    if spec["external_gateway_info"]:
        router_gateway.apply(session, ctx, router, spec["external_gateway_info"])
    notify.router(session, router.id)
    return rest.ApiResponse(201, {RESOURCE: _shown(request, router, render(session, router))})


def list_routers(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ctx = request.context
    query = select(models.Router)
    if not common.is_admin(ctx):
        query = query.where(models.Router.project_id == (ctx.project_id or ""))
    routers = list(session.scalars(query))
    bodies = [
        _shown(request, r, b) for r, b in zip(routers, render_many(session, routers), strict=True)
    ]
    return common.collection(request, "routers", bodies, ATTRS)


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    router = router_ports.get_router(session, request.context, request.path_params["router_id"])
    common.enforce(request, "get_router", router_ports.router_target(router), hide_missing=True)
    body = _shown(request, router, render(session, router))
    return {RESOURCE: common.fields_wanted(request, body)}


def _migrate_ports(
    session: Session, ctx: context.RequestContext, router: models.Router, old_owner: str
) -> None:
    """Interfaces change device owner when a router turns distributed or HA (or back)."""
    new_owner = router_ports.interface_owner(router)
    if new_owner == old_owner:
        return
    for port in router_ports.router_ports(session, router.id, [old_owner]):
        router_ports.set_owner(session, ctx, port, router.id, new_owner)
        session.query(models.RouterPort).filter(models.RouterPort.port_id == port.id).update(
            {"port_type": new_owner}
        )


def _change_kind(
    session: Session,
    ctx: context.RequestContext,
    router: models.Router,
    spec: dict[str, Any],
    admin_up: bool,
) -> bool:
    """distributed / ha changes: only while the router is down (before and after)."""
    changes = {
        key: spec[key]
        for key in ("distributed", "ha")
        if spec.get(key) is not None and spec[key] != getattr(router, key)
    }
    if not changes:
        return False
    if router.admin_state_up or admin_up:
        if "distributed" in changes:
            message = (
                "Cannot change the 'distributed' attribute of active routers. Please set "
                "router admin_state_up to False prior to upgrade"
            )
        else:
            message = (
                "Cannot change HA attribute of active routers. Please set router "
                "admin_state_up to False prior to upgrade"
            )
        raise router_ports.router_bad_request(message)
    old_owner = router_ports.interface_owner(router)
    for key, value in changes.items():
        setattr(router, key, value)
    _migrate_ports(session, ctx, router, old_owner)
    return True


def _apply_update(
    request: rest.ApiRequest, session: Session, router: models.Router, spec: dict[str, Any]
) -> None:
    ctx = request.context
    admin_up = spec.get("admin_state_up", router.admin_state_up)
    _change_kind(session, ctx, router, spec, admin_up)
    if "routes" in spec:
        routes = spec["routes"]
        router_routes.check_nexthops(session, router, routes, None)
        router_routes.replace(session, router.id, routes)
    if "external_gateway_info" in spec:
        router_gateway.apply(session, ctx, router, spec["external_gateway_info"])
    if router.distributed:
        router_gateway.ensure_snat_ports(session, ctx, router)
    else:
        router_gateway.drop_snat_ports(session, router)
    for key in ("name", "description", "admin_state_up"):
        if key in spec:
            setattr(router, key, spec[key])
    common.bump(router)
    session.flush()
    notify.router(session, router.id)


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    item = A.body_of(request, RESOURCE)
    spec = A.parse(ATTRS, item, create=False, resource=RESOURCE)
    router = router_ports.get_router(
        session, request.context, request.path_params["router_id"], lock=True
    )
    target = router_ports.router_target(router)
    given = [k for k in item if not (k == "external_gateway_info" and not spec[k])]
    common.enforce(request, "update_router", target, ATTRS, given)
    router_gateway.enforce_info(request, "update_router", target, spec.get("external_gateway_info"))
    common.check_revision(request, router)
    _apply_update(request, session, router, spec)
    return {RESOURCE: _shown(request, router, render(session, router))}


def _routes_action(request: rest.ApiRequest, session: Session, adding: bool) -> dict[str, Any]:
    action = "add_extraroutes" if adding else "remove_extraroutes"
    router = router_ports.get_router(
        session, request.context, request.path_params["router_id"], lock=True
    )
    common.enforce(request, action, router_ports.router_target(router))
    item = A.body_of(request, RESOURCE)
    unknown = [k for k in item if k != "routes"]
    if unknown or "routes" not in item:
        raise errors.bad_request(f"Bad routes request: Unrecognized attribute(s) '{unknown}'")
    try:
        given = router_routes.validate(item["routes"])
    except A.Invalid as exc:
        raise errors.invalid_input(f"Invalid input for routes. Reason: {exc}") from None
    old = router_routes.current(session, router.id)
    routes = router_routes.merged(old, given) if adding else router_routes.without(old, given)
    _apply_update(request, session, router, {"routes": routes})
    return {RESOURCE: _shown(request, router, render(session, router))}


def add_extraroutes(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    return _routes_action(request, session, adding=True)


def remove_extraroutes(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    return _routes_action(request, session, adding=False)


def delete(request: rest.ApiRequest, session: Session) -> None:
    router = router_ports.get_router(
        session, request.context, request.path_params["router_id"], lock=True
    )
    common.enforce(request, "delete_router", router_ports.router_target(router))
    common.check_revision(request, router)
    attached = router_ports.router_ports(session, router.id, [router_ports.interface_owner(router)])
    if attached:
        raise errors.in_use(
            "RouterInUse",
            f"Router {router.id} has ports still attached: {', '.join(p.id for p in attached)}",
        )
    router_gateway.remove(session, router)
    for port in router_ports.router_ports(session, router.id):
        router_ports.delete_port(session, port)
    common.drop_tags(session, RESOURCE, router.id)
    session.delete(router)
    notify.router(session, router.id)


ROUTES = [
    rest.Route("POST", "/v2.0/routers", create),
    rest.Route("GET", "/v2.0/routers", list_routers),
    rest.Route("GET", "/v2.0/routers/{router_id}", show),
    rest.Route("PUT", "/v2.0/routers/{router_id}", update),
    rest.Route("DELETE", "/v2.0/routers/{router_id}", delete),
    rest.Route("PUT", "/v2.0/routers/{router_id}/add_extraroutes", add_extraroutes),
    rest.Route("PUT", "/v2.0/routers/{router_id}/remove_extraroutes", remove_extraroutes),
    *router_interfaces.ROUTES,
]
