"""Networks: ML2 segments (provider attributes, multi-segment), sharing and external
networks through RBAC, MTU from the segment type, and deletion rules."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stackbox import context, rest
from stackbox.network import (
    address_scopes,
    agent_scheduling,
    availability_zones,
    common,
    errors,
    ml2,
    models,
    notify,
    quotas,
    rbac,
    runtime,
)
from stackbox.network import attributes as A

RESOURCE = "network"

ATTRS = A.spec(
    A.Attr("id", visible=True, sort=True),
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
    A.Attr("subnets"),
    A.Attr(
        "shared", post=True, put=True, default=False, validate=A.boolean, policy=True, sort=True
    ),
    A.Attr("router:external", post=True, put=True, default=False, validate=A.boolean, policy=True),
    A.Attr("is_default", post=True, put=True, default=False, validate=A.boolean, policy=True),
    A.Attr("mtu", post=True, put=True, default=None, validate=A.integer_or_none(68), sort=True),
    A.Attr(
        "port_security_enabled", post=True, put=True, default=True, validate=A.boolean, policy=True
    ),
    A.Attr(
        "availability_zone_hints",
        post=True,
        default=[],
        validate=A.list_of(A.name_string(255)),
        filter=False,
    ),
    A.Attr("availability_zones", filter=False),
    A.Attr(
        "provider:network_type",
        post=True,
        put=True,
        default=None,
        validate=A.string_or_none(32),
        policy=True,
    ),
    A.Attr(
        "provider:physical_network",
        post=True,
        put=True,
        default=None,
        validate=A.string_or_none(64),
        policy=True,
    ),
    A.Attr(
        "provider:segmentation_id",
        post=True,
        put=True,
        default=None,
        validate=A.integer_or_none(0),
        policy=True,
    ),
    A.Attr(
        "segments",
        post=True,
        put=True,
        default=None,
        validate=A.list_of(A.dict_value),
        policy=True,
        filter=False,
    ),
    A.Attr("dns_domain", post=True, put=True, default="", validate=A.name_string(255)),
    A.Attr("ipv4_address_scope"),
    A.Attr("ipv6_address_scope"),
    A.Attr("l2_adjacency"),
    A.Attr("revision_number", sort=True),
    A.Attr("created_at", sort=True),
    A.Attr("updated_at", sort=True),
    A.Attr("tags", filter=False),
)
PROVIDER = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")


def target(
    network: models.Network | None, shared: bool = False, ctx: context.RequestContext | None = None
) -> dict[str, Any]:
    if network is None:
        return {
            "project_id": ctx.project_id if ctx else None,
            "shared": "False",
            "external": "False",
        }
    return {
        "project_id": network.project_id,
        "shared": str(shared),
        "external": str(network.external),
        "network:project_id": network.project_id,
    }


def get_visible(session: Session, ctx: context.RequestContext, network_id: str) -> models.Network:
    """The network if ``ctx`` may see it; 404 (NetworkNotFound) otherwise."""
    query = select(models.Network).where(models.Network.id == network_id)
    if not common.is_admin(ctx):
        query = query.where(rbac.network_clause(ctx))
    network = session.scalars(query).first()
    if network is None:
        raise errors.resource_not_found(RESOURCE, network_id)
    return network


def render_many(
    session: Session, networks: list[models.Network], viewer: str | None = None
) -> list[dict[str, Any]]:
    """Bodies of ``networks``; ``shared`` is as ``viewer`` (a project id) sees it: true when
    a policy shares the network with that project or with everyone."""
    ids = [n.id for n in networks]
    segments = ml2.segments_of(session, ids)
    tags = common.tags_of(session, RESOURCE, ids)
    shared = (
        rbac.shared_with(session, RESOURCE, ids, viewer)
        if viewer is not None
        else rbac.wildcards(session, RESOURCE, rbac.SHARED, ids)
    )
    subnets: dict[str, list[str]] = {i: [] for i in ids}
    for start in range(0, len(ids), 500):
        for network_id, subnet_id in session.execute(
            select(models.Subnet.network_id, models.Subnet.id)
            .where(models.Subnet.network_id.in_(ids[start : start + 500]))
            .order_by(models.Subnet.created_at, models.Subnet.id)
        ):
            subnets[network_id].append(subnet_id)
    views = [_view(n, segments[n.id], tags[n.id], n.id in shared, subnets[n.id]) for n in networks]
    # Zones of the DHCP agents serving each network; address scopes of its subnets.
    zones = agent_scheduling.network_zones(session, ids)
    scopes = address_scopes.of_networks(session, ids)
    for view in views:
        view["availability_zones"] = zones.get(view["id"], [])
        view["ipv4_address_scope"] = scopes[view["id"]][4]
        view["ipv6_address_scope"] = scopes[view["id"]][6]
    return views


def _view(
    network: models.Network,
    segments: list[models.Segment],
    tags: list[str],
    shared: bool,
    subnet_ids: list[str],
) -> dict[str, Any]:
    body = common.standard(network, tags)
    body.update(
        {
            "name": network.name,
            "admin_state_up": network.admin_state_up,
            "status": network.status,
            "subnets": subnet_ids,
            "shared": shared,
            "router:external": network.external,
            "mtu": network.mtu,
            "port_security_enabled": network.port_security_enabled,
            "availability_zone_hints": list(network.availability_zone_hints or []),
            "availability_zones": [],
            "ipv4_address_scope": None,
            "ipv6_address_scope": None,
            "l2_adjacency": True,
            "dns_domain": network.dns_domain or "",
        }
    )
    if network.external:
        body["is_default"] = network.is_default
    if len(segments) == 1:
        segment = segments[0]
        body["provider:network_type"] = segment.network_type
        body["provider:physical_network"] = segment.physical_network
        body["provider:segmentation_id"] = segment.segmentation_id
    elif segments:
        body["segments"] = [
            {
                "provider:network_type": s.network_type,
                "provider:physical_network": s.physical_network,
                "provider:segmentation_id": s.segmentation_id,
            }
            for s in segments
        ]
    return body


def render(session: Session, network: models.Network, viewer: str | None = None) -> dict[str, Any]:
    return render_many(session, [network], viewer)[0]


def _shown(
    request: rest.ApiRequest, session: Session, network: models.Network, body: dict[str, Any]
) -> dict[str, Any]:
    shared = bool(body.get("shared"))
    return common.visible_fields(request, "get_network", ATTRS, target(network, shared), body)


def _segment_specs(spec: dict[str, Any]) -> list[tuple[str, str | None, int | None]]:
    settings = runtime.get().settings
    given = {k: spec[k] for k in PROVIDER if spec.get(k) is not None}
    if spec.get("segments") and given:
        raise errors.bad_request(
            "Segments and provider values cannot both be set.",
            kind="SegmentsSetInConjunctionWithProviders",
        )
    if spec.get("segments"):
        result = []
        for item in spec["segments"]:
            checked = ml2.validate_provider(settings, item)
            result.append(
                (checked["network_type"], checked["physical_network"], checked["segmentation_id"])
            )
        return result
    if given:
        if "provider:network_type" not in given:
            raise errors.invalid_input("provider:network_type required")
        checked = ml2.validate_provider(settings, given)
        return [(checked["network_type"], checked["physical_network"], checked["segmentation_id"])]
    return [(ml2.tenant_type(settings), None, None)]


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    """One network, or several at once (``{"networks": [...]}``): all or nothing."""
    body = request.body
    if isinstance(body, dict) and "networks" in body and RESOURCE not in body:
        items = body["networks"]
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise errors.bad_request("Bad networks request: Resource body required.")
        made = [_create_one(request, session, item) for item in items]
        return rest.ApiResponse(
            201,
            {
                "networks": [
                    _shown(request, session, n, render(session, n, request.context.project_id))
                    for n in made
                ]
            },
        )
    network = _create_one(request, session, A.body_of(request, RESOURCE))
    return rest.ApiResponse(
        201,
        {
            RESOURCE: _shown(
                request, session, network, render(session, network, request.context.project_id)
            )
        },
    )


def _create_one(request: rest.ApiRequest, session: Session, item: dict[str, Any]) -> models.Network:
    spec = A.parse(ATTRS, item, create=True, resource=RESOURCE)
    ctx = request.context
    project_id = spec.get("project_id") or spec.get("tenant_id") or ctx.project_id or ""
    common.enforce(
        request,
        "create_network",
        {"project_id": project_id, "shared": "False", "external": "False"},
        ATTRS,
        [k for k in item if k not in ("project_id", "tenant_id")],
    )
    if project_id != ctx.project_id and not common.is_admin(ctx):
        raise errors.forbidden("(create_network) is disallowed by policy")
    quotas.check(session, project_id, RESOURCE)
    availability_zones.validate(session, RESOURCE, spec["availability_zone_hints"])
    settings = runtime.get().settings
    specs = _segment_specs(spec)
    limit = min(ml2.mtu(settings, s[0]) for s in specs)
    wanted_mtu = spec.get("mtu")
    if wanted_mtu is not None and wanted_mtu > limit:
        raise errors.invalid_input(f"Requested MTU is too big, maximum is {limit}")
    network = models.Network(
        name=spec["name"],
        description=spec["description"],
        admin_state_up=spec["admin_state_up"],
        status="ACTIVE",
        mtu=wanted_mtu or limit,
        port_security_enabled=spec["port_security_enabled"],
        external=spec["router:external"],
        is_default=spec["is_default"],
        availability_zone_hints=spec["availability_zone_hints"],
        dns_domain=spec["dns_domain"],
    )
    common.stamp_new(network, ctx, project_id)
    session.add(network)
    session.flush()
    for index, (network_type, physnet, seg_id) in enumerate(specs):
        ml2.add_segment(session, settings, network, network_type, physnet, seg_id, index)
    if spec["shared"]:
        rbac.set_wildcard(session, RESOURCE, network.id, rbac.SHARED, True, project_id)
    if network.external:
        rbac.set_wildcard(session, RESOURCE, network.id, rbac.EXTERNAL, True, project_id)
    session.flush()
    notify.network(session, network.id)
    return network


def list_networks(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ctx = request.context
    query = select(models.Network)
    if not common.is_admin(ctx):
        query = query.where(rbac.network_clause(ctx))
    networks = list(session.scalars(query))
    bodies = [
        _shown(request, session, n, b)
        for n, b in zip(networks, render_many(session, networks, ctx.project_id), strict=True)
    ]
    return common.collection(request, "networks", bodies, ATTRS)


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    network = get_visible(session, request.context, request.path_params["network_id"])
    body = render(session, network, request.context.project_id)
    common.enforce(request, "get_network", target(network, body["shared"]), hide_missing=True)
    return {RESOURCE: common.fields_wanted(request, _shown(request, session, network, body))}


def _foreign_ports(session: Session, network: models.Network) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(models.Port)
            .where(
                models.Port.network_id == network.id,
                models.Port.project_id != network.project_id,
            )
        )
        or 0
    )


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    item = A.body_of(request, RESOURCE)
    spec = A.parse(ATTRS, item, create=False, resource=RESOURCE)
    network = get_visible(session, request.context, request.path_params["network_id"])
    shared_now = rbac.wildcard(session, RESOURCE, network.id, rbac.SHARED)
    common.enforce(request, "update_network", target(network, shared_now), ATTRS, item)
    common.check_revision(request, network)
    if any(spec.get(k) is not None for k in (*PROVIDER, "segments")):
        raise errors.invalid_input("Plugin does not support updating provider attributes")
    if "shared" in spec and not spec["shared"] and shared_now and _foreign_ports(session, network):
        raise errors.conflict(
            "InvalidSharedSetting",
            f"Unable to reconfigure sharing settings for network {network.id}. Multiple "
            "tenants are using it.",
        )
    if "router:external" in spec and not spec["router:external"] and network.external:
        in_use = (
            session.scalar(
                select(func.count())
                .select_from(models.Port)
                .where(
                    models.Port.network_id == network.id,
                    models.Port.device_owner.in_(("network:router_gateway", "network:floatingip")),
                )
            )
            or 0
        )
        if in_use:
            raise errors.conflict(
                "ExternalNetworkInUse",
                f"External network {network.id} cannot be updated to be made non-external, "
                "since it has existing gateway ports",
            )
    if "mtu" in spec and spec["mtu"] is not None:
        settings = runtime.get().settings
        segments = ml2.segments_of(session, [network.id])[network.id]
        limit = min(
            (ml2.mtu(settings, s.network_type) for s in segments),
            default=settings.global_physnet_mtu,
        )
        if spec["mtu"] > limit:
            raise errors.invalid_input(f"Requested MTU is too big, maximum is {limit}")
    for key, column in (
        ("name", "name"),
        ("description", "description"),
        ("admin_state_up", "admin_state_up"),
        ("mtu", "mtu"),
        ("port_security_enabled", "port_security_enabled"),
        ("dns_domain", "dns_domain"),
        ("is_default", "is_default"),
    ):
        if key in spec and spec[key] is not None:
            setattr(network, column, spec[key])
    if "shared" in spec:
        rbac.set_wildcard(
            session, RESOURCE, network.id, rbac.SHARED, spec["shared"], network.project_id
        )
    if "router:external" in spec:
        network.external = spec["router:external"]
        rbac.set_wildcard(
            session, RESOURCE, network.id, rbac.EXTERNAL, network.external, network.project_id
        )
    common.bump(network)
    session.flush()
    notify.network(session, network.id)
    return {
        RESOURCE: _shown(
            request, session, network, render(session, network, request.context.project_id)
        )
    }


# device_owner values of ports the network itself owns: deleted with it.
NETWORK_OWNED = ("network:dhcp",)


def delete(request: rest.ApiRequest, session: Session) -> None:
    network = get_visible(session, request.context, request.path_params["network_id"])
    shared_now = rbac.wildcard(session, RESOURCE, network.id, rbac.SHARED)
    common.enforce(request, "delete_network", target(network, shared_now))
    common.check_revision(request, network)
    # As Neutron: unassociated floating IPs go with their external network; an
    # associated one keeps it in use. Imported here: floatingips builds on this module.
    from stackbox.network import floatingips

    floatingips.network_deleting(session, network.id)
    session.flush()
    in_use = (
        session.scalar(
            select(func.count())
            .select_from(models.Port)
            .where(
                models.Port.network_id == network.id,
                models.Port.device_owner.not_in(NETWORK_OWNED),
            )
        )
        or 0
    )
    if in_use:
        raise errors.in_use(
            "NetworkInUse",
            f"Unable to complete operation on network {network.id}. There are one or more "
            "ports still in use on the network.",
        )
    session.query(models.RbacPolicy).filter(
        models.RbacPolicy.object_type == RESOURCE, models.RbacPolicy.object_id == network.id
    ).delete()
    for subnet_id in session.scalars(
        select(models.Subnet.id).where(models.Subnet.network_id == network.id)
    ):
        common.drop_tags(session, "subnet", subnet_id)
    # The database cascades ports, addresses and floating IPs; tags are not foreign keys.
    for port_id in session.scalars(
        select(models.Port.id).where(models.Port.network_id == network.id)
    ):
        common.drop_tags(session, "port", port_id)
    for fip_id in session.scalars(
        select(models.FloatingIP.id).where(models.FloatingIP.floating_network_id == network.id)
    ):
        common.drop_tags(session, "floatingip", fip_id)
    common.drop_tags(session, RESOURCE, network.id)
    session.delete(network)
    notify.network(session, network.id)


ROUTES = [
    rest.Route("POST", "/v2.0/networks", create),
    rest.Route("GET", "/v2.0/networks", list_networks),
    rest.Route("GET", "/v2.0/networks/{network_id}", show),
    rest.Route("PUT", "/v2.0/networks/{network_id}", update),
    rest.Route("DELETE", "/v2.0/networks/{network_id}", delete),
]
