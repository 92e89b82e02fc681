"""Subnets: IPv4 and IPv6 address ranges of a network, given by CIDR or carved from a
subnet pool, with allocation pools, a gateway, host routes, DNS servers, IPv6 RA and
address modes and service types; overlapping CIDRs within a network are refused,
and a subnet whose addresses ports still hold cannot be deleted."""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy import delete as delete_rows
from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import context, policy, rest
from stackbox.network import (
    address_scopes,
    common,
    errors,
    ipam,
    models,
    networks,
    notify,
    quotas,
    subnet_checks,
    subnet_views,
    subnetpools,
)
from stackbox.network import attributes as A
from stackbox.network import ip_ranges as R
from stackbox.network import subnet_allocation as SA

RESOURCE = "subnet"
UNSET: Any = object()  # "not in the request", where null means something else

ATTRS = A.spec(
    A.Attr("id", sort=True),
    A.Attr("name", post=True, put=True, default="", validate=A.name_string(255), sort=True),
    A.Attr("description", post=True, put=True, default="", validate=A.name_string(255)),
    A.Attr(
        "project_id", post=True, default=None, validate=A.name_string(255), sort=True, owner=True
    ),
    A.Attr(
        "tenant_id", post=True, default=None, validate=A.name_string(255), sort=True, owner=True
    ),
    A.Attr("network_id", post=True, default=A.MISSING, validate=A.uuid_string, sort=True),
    A.Attr("ip_version", post=True, default=A.MISSING, validate=R.ip_version, sort=True),
    A.Attr("subnetpool_id", post=True, default=None, validate=A.uuid_or_none, sort=True),
    A.Attr(
        "prefixlen", post=True, default=None, validate=R.non_negative, visible=False, filter=False
    ),
    A.Attr("use_default_subnetpool", post=True, default=False, validate=A.boolean, filter=False),
    A.Attr("cidr", post=True, default=None, validate=R.subnet_cidr_or_none, sort=True),
    A.Attr(
        "gateway_ip", post=True, put=True, default=UNSET, validate=A.ip_address_or_none, sort=True
    ),
    A.Attr(
        "allocation_pools",
        post=True,
        put=True,
        default=UNSET,
        validate=subnet_checks.allocation_pools,
        filter=False,
    ),
    A.Attr(
        "dns_nameservers",
        post=True,
        put=True,
        default=[],
        validate=subnet_checks.dns_nameservers,
        filter=False,
    ),
    A.Attr(
        "host_routes",
        post=True,
        put=True,
        default=[],
        validate=subnet_checks.host_routes,
        filter=False,
    ),
    A.Attr("enable_dhcp", post=True, put=True, default=True, validate=A.boolean, sort=True),
    A.Attr("ipv6_ra_mode", post=True, default=None, validate=subnet_checks.ipv6_mode, sort=True),
    A.Attr(
        "ipv6_address_mode", post=True, default=None, validate=subnet_checks.ipv6_mode, sort=True
    ),
    A.Attr(
        "service_types",
        post=True,
        put=True,
        default=[],
        validate=subnet_checks.service_types,
        policy=True,
    ),
    A.Attr("segment_id", post=True, put=True, default=None, validate=A.uuid_or_none, policy=True),
    A.Attr("router:external", sort=True),
    A.Attr("revision_number", sort=True),
    A.Attr("created_at", sort=True),
    A.Attr("updated_at", sort=True),
    A.Attr("tags", filter=False),
)
# Device owners whose addresses do not keep a subnet alive (Neutron's AUTO_DELETE_PORT_OWNERS).
AUTO_DELETE_OWNERS = ("network:dhcp", "network:distributed", "network:floatingip_agent_gateway")


def _bad(message: str) -> rest.ApiError:
    return errors.bad_request(f"Bad subnets request: {message}.")


# Other modules ask these of subnets (a subnet as its owner may see it, its policy target).
get_visible = subnet_views.get_visible
render_many = subnet_views.render_many
network_facts = subnet_views.network_facts
target = subnet_views.target
NetworkFacts = subnet_views.NetworkFacts


def _shown(
    request: rest.ApiRequest, subnet: models.Subnet, body: dict[str, Any], facts: NetworkFacts
) -> dict[str, Any]:
    return common.visible_fields(
        request, "get_subnet", ATTRS, target(subnet.project_id, facts), body
    )


def _rendered(request: rest.ApiRequest, session: Session, subnet: models.Subnet) -> dict[str, Any]:
    facts = network_facts(session, [subnet.network_id])[subnet.network_id]
    return _shown(request, subnet, render_many(session, [subnet])[0], facts)


# --- writing children -----------------------------------------------------------------------


def _write_pools(session: Session, subnet: models.Subnet, pools: list[R.Range]) -> None:
    P = models.AllocationPool
    session.query(P).filter(P.subnet_id == subnet.id).delete()
    for pool in pools:
        session.add(P(subnet_id=subnet.id, first_ip=pool.start, last_ip=pool.end))


def _write_dns(session: Session, subnet: models.Subnet, servers: list[str]) -> None:
    D = models.DnsNameserver
    session.query(D).filter(D.subnet_id == subnet.id).delete()
    session.flush()
    for order, server in enumerate(servers):
        session.add(D(subnet_id=subnet.id, address=server, order=order))


def _write_routes(session: Session, subnet: models.Subnet, routes: list[dict[str, str]]) -> None:
    H = models.HostRoute
    session.query(H).filter(H.subnet_id == subnet.id).delete()
    session.flush()
    for route in routes:
        session.add(H(subnet_id=subnet.id, **route))


def _write_types(session: Session, subnet: models.Subnet, types: list[str]) -> None:
    T = models.SubnetServiceType
    session.query(T).filter(T.subnet_id == subnet.id).delete()
    session.flush()
    for service_type in types:
        session.add(T(subnet_id=subnet.id, service_type=service_type))


def _check_segment(session: Session, network_id: str, segment_id: str | None) -> None:
    if segment_id is None:
        return
    segment = session.get(models.Segment, segment_id)
    if segment is None:
        raise errors.resource_not_found("segment", segment_id)
    if segment.network_id != network_id:
        raise errors.bad_request(
            f"Subnet network id {network_id} does not match segment network id "
            f"{segment.network_id}",
            kind="NetworkIdsDontMatch",
        )


# --- create ---------------------------------------------------------------------------------


def _requested_pool(
    session: Session, ctx: context.RequestContext, spec: dict[str, Any]
) -> models.SubnetPool | None:
    """The pool a create asks for: by id, or the default one of its IP version."""
    pool_id, use_default = spec["subnetpool_id"], spec["use_default_subnetpool"]
    if pool_id and use_default:
        raise _bad("subnetpool_id and use_default_subnetpool cannot both be specified")
    if pool_id:
        return subnetpools.get_visible(session, ctx, pool_id)
    if not use_default:
        return None
    version = R.version_of(spec["cidr"]) if spec["cidr"] else spec["ip_version"]
    pool = SA.default_pool(session, version)
    if pool is not None:
        with contextlib.suppress(rest.NotFound):
            return subnetpools.get_visible(session, ctx, pool.id)
    raise _bad(f"No default subnetpool found for IPv{version}")


def _carve(
    session: Session, spec: dict[str, Any], pool: models.SubnetPool, project_id: str
) -> tuple[str, str | None]:
    """(cidr, gateway) of a subnet taken from ``pool``."""
    cidr, prefixlen, gateway = spec["cidr"], spec["prefixlen"], spec["gateway_ip"]
    if pool.ip_version != spec["ip_version"]:
        raise _bad(
            f"Cannot allocate IPv{spec['ip_version']} subnet from IPv{pool.ip_version} subnet pool"
        )
    if cidr is None and isinstance(gateway, str):
        # A gateway alone names the prefix it lies in.
        length = prefixlen if prefixlen is not None else pool.default_prefixlen
        cidr = str(R.network_of(f"{gateway}/{length}"))
        if R.gateway_invalid(cidr, gateway):
            raise errors.invalid_input("Gateway is not valid on subnet")
    carved = SA.allocate_cidr(session, pool, project_id, cidr, prefixlen)
    if gateway is UNSET:
        # Any prefix: its first host (IPv6 too); a given one: the usual default.
        gateway = R.first_host(carved) if spec["cidr"] is None else default_gateway(carved)
    return carved, gateway


def default_gateway(cidr: str) -> str:
    """Neutron's default: the first host of an IPv4 subnet, the subnet-router anycast
    address (the prefix itself) of an IPv6 one."""
    net = R.network_of(cidr)
    return str(net.network_address if net.version == 6 else net.network_address + 1)


def _check_network_fit(
    session: Session,
    network: models.Network,
    cidr: str,
    version: int,
    pool: models.SubnetPool | None,
) -> None:
    """No overlap with the network's subnets; one pool (or scope) per IP version."""
    if R.network_of(cidr).prefixlen == 0:
        raise errors.invalid_input("0 is not allowed as CIDR prefix length")
    S = models.Subnet
    existing = list(
        session.execute(
            select(S.cidr, S.ip_version, S.subnetpool_id).where(S.network_id == network.id)
        )
    )
    if R.overlaps([cidr], [c for c, _, _ in existing]):
        raise errors.invalid_input(
            f"Requested subnet with cidr: {cidr} for network: {network.id} overlaps with "
            "another subnet"
        )
    scope = address_scopes.of_networks(session, [network.id])[network.id][version]
    if scope is not None and (pool is None or pool.address_scope_id != scope):
        raise errors.bad_request(
            "Subnets of the same address family hosted on the same network must all "
            "participate in the same address scope.",
            kind="NetworkAddressScopeAffinityError",
        )
    for _, other_version, other_pool in existing:
        if pool is not None:
            mixed = other_pool != pool.id and other_version == pool.ip_version and scope is None
        else:
            mixed = other_pool is not None and other_version == version
        if mixed:
            raise errors.bad_request(
                "Subnets hosted on the same network must be allocated from the same subnet pool.",
                kind="NetworkSubnetPoolAffinityError",
            )


def _create_one(request: rest.ApiRequest, session: Session, item: dict[str, Any]) -> models.Subnet:
    spec = A.parse(ATTRS, item, create=True, resource=RESOURCE)
    ctx = request.context
    network = networks.get_visible(session, ctx, spec["network_id"])
    facts = network_facts(session, [network.id])[network.id]
    project_id = spec["project_id"] or spec["tenant_id"] or ctx.project_id or ""
    given = [k for k in item if k not in ("project_id", "tenant_id")]
    common.enforce(request, "create_subnet", target(project_id, facts), ATTRS, given)
    if project_id != ctx.project_id and not common.is_admin(ctx):
        raise errors.forbidden("(create_subnet) is disallowed by policy")
    quotas.check(session, project_id, RESOURCE)
    version, cidr = spec["ip_version"], spec["cidr"]
    if cidr is not None and spec["prefixlen"] is not None:
        raise _bad("cidr and prefixlen must not be supplied together")
    pool = _requested_pool(session, ctx, spec)
    if pool is None and cidr is None:
        raise _bad("a subnetpool must be specified in the absence of a cidr")
    if pool is not None and cidr is None and spec["allocation_pools"] is not UNSET:
        raise _bad("allocation_pools allowed only for specific subnet requests.")
    subnet_checks.validate(
        {k: v for k, v in spec.items() if v is not UNSET}, version=version, cidr=cidr
    )
    # Subnets of one network are created one at a time (overlap checks stay true).
    session.execute(
        select(models.Network.id).where(models.Network.id == network.id).with_for_update()
    )
    subnet_checks.check_mtu(network.id, network.mtu, version)
    gateway = spec["gateway_ip"]
    if pool is not None:
        cidr, gateway = _carve(session, spec, pool, project_id)
    elif gateway is UNSET:
        gateway = default_gateway(cidr)
    assert cidr is not None
    if spec["allocation_pools"] is UNSET:
        pools = R.generate_pools(cidr, gateway)
    else:
        pools = R.parse_pools(spec["allocation_pools"])
        R.validate_pools(pools, cidr)
        if gateway:
            R.check_gateway_outside_pools(gateway, pools)
    _check_network_fit(session, network, cidr, version, pool)
    _check_segment(session, network.id, spec["segment_id"])
    subnet = models.Subnet(
        name=spec["name"],
        description=spec["description"],
        network_id=network.id,
        ip_version=version,
        cidr=cidr,
        gateway_ip=gateway,
        enable_dhcp=spec["enable_dhcp"],
        ipv6_ra_mode=spec["ipv6_ra_mode"],
        ipv6_address_mode=spec["ipv6_address_mode"],
        subnetpool_id=pool.id if pool is not None else None,
        segment_id=spec["segment_id"],
    )
    common.stamp_new(subnet, ctx, project_id)
    session.add(subnet)
    session.flush()
    _write_pools(session, subnet, pools)
    _write_dns(session, subnet, spec["dns_nameservers"])
    _write_routes(session, subnet, spec["host_routes"])
    _write_types(session, subnet, spec["service_types"])
    session.flush()
    if ipam.is_auto_address(subnet):
        for port in ipam.add_auto_addresses(session, subnet):
            common.bump(port)
            notify.port(session, port)
    notify.network(session, network.id)
    return subnet


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    body = request.body
    if isinstance(body, dict) and "subnets" in body and RESOURCE not in body:
        items = body["subnets"]
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise errors.bad_request("Bad subnets request: Resource body required.")
        made = [_create_one(request, session, item) for item in items]
        return rest.ApiResponse(201, {"subnets": [_rendered(request, session, s) for s in made]})
    subnet = _create_one(request, session, A.body_of(request, RESOURCE))
    return rest.ApiResponse(201, {RESOURCE: _rendered(request, session, subnet)})


# --- read -----------------------------------------------------------------------------------


def list_subnets(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ctx = request.context
    query = select(models.Subnet)
    if not common.is_admin(ctx):
        query = query.where(subnet_views.visible_clause(ctx))
    subnets = list(session.scalars(query))
    facts = network_facts(session, [s.network_id for s in subnets])
    bodies = []
    for subnet, body in zip(subnets, render_many(session, subnets), strict=True):
        rules = target(subnet.project_id, facts[subnet.network_id])
        rules["tenant_id"] = subnet.project_id
        if policy.allowed(ctx, "get_subnet", rules, service=common.SERVICE):
            bodies.append(_shown(request, subnet, body, facts[subnet.network_id]))
    shared = {n for n, f in facts.items() if f.shared}

    def on_shared_network(item: dict[str, Any], values: list[str]) -> bool:
        on = item.get("network_id") in shared
        return any(v.strip().lower() in (("true", "1") if on else ("false", "0")) for v in values)

    return common.collection(
        request, "subnets", bodies, ATTRS, special={"shared": on_shared_network}
    )


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    subnet = get_visible(session, request.context, request.path_params["subnet_id"])
    facts = network_facts(session, [subnet.network_id])[subnet.network_id]
    common.enforce(request, "get_subnet", target(subnet.project_id, facts), hide_missing=True)
    body = _shown(request, subnet, render_many(session, [subnet])[0], facts)
    return {RESOURCE: common.fields_wanted(request, body)}


# --- update and delete ----------------------------------------------------------------------


def _gateway_holder(session: Session, subnet: models.Subnet) -> str | None:
    """The router interface holding the subnet's gateway address, if any."""
    if not subnet.gateway_ip:
        return None
    A_, P = models.IPAllocation, models.Port
    return session.scalar(
        select(A_.port_id)
        .join(P, P.id == A_.port_id)
        .where(
            A_.subnet_id == subnet.id,
            A_.ip_address == subnet.gateway_ip,
            P.device_owner.in_(R.ROUTER_INTERFACE_OWNERS_SNAT),
        )
    )


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    item = A.body_of(request, RESOURCE)
    spec = A.parse(ATTRS, item, create=False, resource=RESOURCE)
    subnet = get_visible(session, request.context, request.path_params["subnet_id"])
    facts = network_facts(session, [subnet.network_id])[subnet.network_id]
    common.enforce(request, "update_subnet", target(subnet.project_id, facts), ATTRS, item)
    common.check_revision(request, subnet)
    subnet_checks.validate(
        spec,
        version=subnet.ip_version,
        cidr=subnet.cidr,
        dhcp_was_enabled=subnet.enable_dhcp,
        current_modes=(subnet.ipv6_ra_mode, subnet.ipv6_address_mode),
        subnet_id=subnet.id,
    )
    gateway = spec.get("gateway_ip", subnet.gateway_ip)
    gateway_changed = gateway != subnet.gateway_ip
    if gateway_changed:
        holder = _gateway_holder(session, subnet)
        if holder is not None:
            raise errors.in_use(
                "GatewayIpInUse",
                f"Current gateway ip {subnet.gateway_ip} already in use by port {holder}. "
                "Unable to update.",
            )
    pools = None
    if "allocation_pools" in spec:
        pools = R.parse_pools(spec["allocation_pools"])
        R.validate_pools(pools, subnet.cidr)
    if gateway and (gateway_changed or pools is not None):
        current = pools if pools is not None else ipam.pools_of(session, [subnet.id])[subnet.id]
        R.check_gateway_outside_pools(gateway, current)
    if "segment_id" in spec:
        _check_segment(session, subnet.network_id, spec["segment_id"])
        subnet.segment_id = spec["segment_id"]
    for key in ("name", "description", "enable_dhcp"):
        if key in spec:
            setattr(subnet, key, spec[key])
    subnet.gateway_ip = gateway
    if pools is not None:
        _write_pools(session, subnet, pools)
    if "dns_nameservers" in spec:
        _write_dns(session, subnet, spec["dns_nameservers"])
    if "host_routes" in spec:
        _write_routes(session, subnet, spec["host_routes"])
    if "service_types" in spec:
        _write_types(session, subnet, spec["service_types"])
    common.bump(subnet)
    session.flush()
    notify.network(session, subnet.network_id)
    return {RESOURCE: _rendered(request, session, subnet)}


def delete(request: rest.ApiRequest, session: Session) -> None:
    subnet = get_visible(session, request.context, request.path_params["subnet_id"])
    facts = network_facts(session, [subnet.network_id])[subnet.network_id]
    common.enforce(request, "delete_subnet", target(subnet.project_id, facts))
    common.check_revision(request, subnet)
    # Waits for transactions still giving out addresses here, and stops new ones.
    session.execute(select(models.Subnet.id).where(models.Subnet.id == subnet.id).with_for_update())
    A_, P = models.IPAllocation, models.Port
    holders = list(
        session.execute(
            select(P.id, P.device_owner)
            .join(A_, A_.port_id == P.id)
            .where(A_.subnet_id == subnet.id)
        )
    )
    auto = ipam.is_auto_address(subnet)
    if any(
        owner in R.ROUTER_INTERFACE_OWNERS or (not auto and owner not in AUTO_DELETE_OWNERS)
        for _, owner in holders
    ):
        raise errors.in_use(
            "SubnetInUse",
            f"Unable to complete operation on subnet {subnet.id}: One or more ports have an IP "
            "allocation from this subnet.",
        )
    session.execute(delete_rows(A_).where(A_.subnet_id == subnet.id))
    for port in session.scalars(select(P).where(P.id.in_({p for p, _ in holders}))):
        common.bump(port)
        notify.port(session, port)
    common.drop_tags(session, RESOURCE, subnet.id)
    session.delete(subnet)
    notify.network(session, subnet.network_id)


ROUTES = [
    rest.Route("POST", "/v2.0/subnets", create),
    rest.Route("GET", "/v2.0/subnets", list_subnets),
    rest.Route("GET", "/v2.0/subnets/{subnet_id}", show),
    rest.Route("PUT", "/v2.0/subnets/{subnet_id}", update),
    rest.Route("DELETE", "/v2.0/subnets/{subnet_id}", delete),
]
