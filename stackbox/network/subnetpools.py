"""Subnet pools: prefixes subnets are carved from, with prefix length bounds, a
per-project quota of address space, one default pool per IP version, and an
optional address scope (the rules and the carving are in ``subnet_allocation``),
and the prefix operations (add_prefixes, remove_prefixes, onboard_network_subnets).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from stackbox import context, rest
from stackbox.network import address_scopes, common, errors, models, quotas, rbac
from stackbox.network import attributes as A
from stackbox.network import ip_ranges as R
from stackbox.network import subnet_allocation as SA

RESOURCE = "subnetpool"

ATTRS = A.spec(
    A.Attr("id", sort=True),
    A.Attr("name", post=True, put=True, default=A.MISSING, validate=A.name_string(255), sort=True),
    A.Attr("description", post=True, put=True, default="", validate=A.name_string(255)),
    A.Attr(
        "project_id", post=True, default=None, validate=A.name_string(255), sort=True, owner=True
    ),
    A.Attr(
        "tenant_id", post=True, default=None, validate=A.name_string(255), sort=True, owner=True
    ),
    A.Attr("prefixes", post=True, put=True, default=A.MISSING, validate=R.subnet_list),
    A.Attr("default_quota", post=True, put=True, default=None, validate=R.non_negative, sort=True),
    A.Attr("ip_version", sort=True),
    A.Attr("default_prefixlen", post=True, put=True, default=None, validate=R.non_negative),
    A.Attr("min_prefixlen", post=True, put=True, default=None, validate=R.non_negative),
    A.Attr("max_prefixlen", post=True, put=True, default=None, validate=R.non_negative),
    A.Attr(
        "is_default", post=True, put=True, default=False, validate=A.boolean, policy=True, sort=True
    ),
    A.Attr("shared", post=True, default=False, validate=A.boolean, policy=True, sort=True),
    A.Attr(
        "address_scope_id", post=True, put=True, default=None, validate=A.uuid_or_none, sort=True
    ),
    A.Attr("revision_number", sort=True),
    A.Attr("created_at", sort=True),
    A.Attr("updated_at", sort=True),
    A.Attr("tags", filter=False),
)


def visible_clause(ctx: context.RequestContext) -> Any:
    P = models.SubnetPool
    project = ctx.project_id or ""
    return or_(
        P.project_id == project, P.shared.is_(True), rbac.granted(RESOURCE, rbac.SHARED, project)
    )


def get_visible(session: Session, ctx: context.RequestContext, pool_id: str) -> models.SubnetPool:
    """The pool if ``ctx`` may see it; 404 SubnetPoolNotFound otherwise."""
    query = select(models.SubnetPool).where(models.SubnetPool.id == pool_id)
    if not common.is_admin(ctx):
        query = query.where(visible_clause(ctx))
    pool = session.scalars(query).first()
    if pool is None:
        raise errors.resource_not_found(RESOURCE, pool_id)
    return pool


def render_many(session: Session, pools: list[models.SubnetPool]) -> list[dict[str, Any]]:
    ids = [p.id for p in pools]
    prefixes = SA.prefixes_of(session, ids)
    tags = common.tags_of(session, RESOURCE, ids)
    shared = rbac.wildcards(session, RESOURCE, rbac.SHARED, ids)
    bodies = []
    for pool in pools:
        body = common.standard(pool, tags[pool.id])
        body.update(
            {
                "name": pool.name,
                "prefixes": prefixes[pool.id],
                "default_quota": pool.default_quota,
                "ip_version": pool.ip_version,
                # Neutron shows the prefix lengths as strings.
                "default_prefixlen": str(pool.default_prefixlen),
                "min_prefixlen": str(pool.min_prefixlen),
                "max_prefixlen": str(pool.max_prefixlen),
                "is_default": pool.is_default,
                "shared": pool.shared or pool.id in shared,
                "address_scope_id": pool.address_scope_id,
            }
        )
        bodies.append(body)
    return bodies


def render(session: Session, pool: models.SubnetPool) -> dict[str, Any]:
    return render_many(session, [pool])[0]


def target(pool: models.SubnetPool, shared: bool) -> dict[str, Any]:
    return {"project_id": pool.project_id, "shared": str(shared)}


# --- API ------------------------------------------------------------------------------------


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    item = A.body_of(request, RESOURCE)
    spec = A.parse(ATTRS, item, create=True, resource=RESOURCE)
    ctx = request.context
    project_id = spec.get("project_id") or spec.get("tenant_id") or ctx.project_id or ""
    given = [k for k in item if k not in ("project_id", "tenant_id")]
    common.enforce(
        request, "create_subnetpool", {"project_id": project_id, "shared": "False"}, ATTRS, given
    )
    if project_id != ctx.project_id and not common.is_admin(ctx):
        raise errors.forbidden("(create_subnetpool) is disallowed by policy")
    prefixes = R.collapse(spec["prefixes"])
    version = SA.version_of(spec["prefixes"])
    low, high, default = SA.bounds(version, spec)
    pool = models.SubnetPool(
        name=spec["name"],
        description=spec["description"],
        ip_version=version,
        default_prefixlen=default,
        min_prefixlen=low,
        max_prefixlen=high,
        shared=spec["shared"],
        is_default=spec["is_default"],
        default_quota=spec["default_quota"],
        address_scope_id=spec["address_scope_id"],
    )
    common.stamp_new(pool, ctx, project_id)
    if pool.is_default:
        SA.check_one_default(session, version, None)
    SA.check_scope(session, ctx, pool.address_scope_id, pool.id, prefixes, version)
    quotas.check(session, project_id, RESOURCE)
    session.add(pool)
    session.flush()
    SA.set_prefixes(session, pool, prefixes)
    session.flush()
    return rest.ApiResponse(201, {RESOURCE: render(session, pool)})


def list_pools(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    query = select(models.SubnetPool)
    if not common.is_admin(request.context):
        query = query.where(visible_clause(request.context))
    return common.collection(
        request, "subnetpools", render_many(session, list(session.scalars(query))), ATTRS
    )


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    pool = get_visible(session, request.context, request.path_params["subnetpool_id"])
    body = render(session, pool)
    common.enforce(request, "get_subnetpool", target(pool, body["shared"]), hide_missing=True)
    return {RESOURCE: common.fields_wanted(request, body)}


def _check_scope_owner(
    session: Session, ctx: context.RequestContext, pool: models.SubnetPool
) -> None:
    """A pool in a shared scope of another project may be changed only by admins."""
    if pool.address_scope_id is None:
        return
    scope = address_scopes.get_visible(session, ctx, pool.address_scope_id)
    if not common.is_admin(ctx) and scope.project_id != ctx.project_id:
        raise errors.bad_request(
            f"Illegal subnetpool update : subnetpool {pool.id} cannot be updated when "
            f"associated with shared address scope {scope.id}.",
            kind="IllegalSubnetPoolUpdate",
        )


def _apply(
    request: rest.ApiRequest, session: Session, pool: models.SubnetPool, spec: dict[str, Any]
) -> None:
    """Change the pool as ``spec`` says, with every check of an update."""
    ctx = request.context
    current = SA.prefixes_of(session, [pool.id])[pool.id]
    prefixes = current
    if "prefixes" in spec:
        SA.version_of(spec["prefixes"])
        prefixes = R.collapse(spec["prefixes"])
        if not R.covers(prefixes, current):
            raise errors.bad_request(
                "Illegal update to prefixes: Existing prefixes must be a subset of the new "
                "prefixes.",
                kind="IllegalSubnetPoolPrefixUpdate",
            )
    merged = {
        "min_prefixlen": spec.get("min_prefixlen", pool.min_prefixlen),
        "max_prefixlen": spec.get("max_prefixlen", pool.max_prefixlen),
        "default_prefixlen": spec.get("default_prefixlen", pool.default_prefixlen),
    }
    low, high, default = SA.bounds(pool.ip_version, merged)
    if spec.get("is_default") and not pool.is_default:
        SA.check_one_default(session, pool.ip_version, pool.id)
    _check_scope_owner(session, ctx, pool)
    scope_id = spec.get("address_scope_id", pool.address_scope_id)
    SA.check_scope(session, ctx, scope_id, pool.id, prefixes, pool.ip_version)
    for key in ("name", "description", "default_quota", "is_default"):
        if key in spec and spec[key] is not None:
            setattr(pool, key, spec[key])
    pool.address_scope_id = scope_id
    pool.min_prefixlen, pool.max_prefixlen, pool.default_prefixlen = low, high, default
    if prefixes != current:
        SA.set_prefixes(session, pool, prefixes)
    common.bump(pool)
    session.flush()


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    item = A.body_of(request, RESOURCE)
    spec = A.parse(ATTRS, item, create=False, resource=RESOURCE)
    pool = get_visible(session, request.context, request.path_params["subnetpool_id"])
    shared = render(session, pool)["shared"]
    common.enforce(request, "update_subnetpool", target(pool, shared), ATTRS, item)
    common.check_revision(request, pool)
    _apply(request, session, pool, spec)
    return {RESOURCE: render(session, pool)}


def delete(request: rest.ApiRequest, session: Session) -> None:
    pool = get_visible(session, request.context, request.path_params["subnetpool_id"])
    common.enforce(request, "delete_subnetpool", target(pool, render(session, pool)["shared"]))
    common.check_revision(request, pool)
    if session.scalar(select(models.Subnet.id).where(models.Subnet.subnetpool_id == pool.id)):
        raise errors.bad_request(
            "Unable to delete subnet pool: Subnet pool has existing allocations.",
            kind="SubnetPoolDeleteError",
        )
    session.query(models.RbacPolicy).filter(
        models.RbacPolicy.object_type == RESOURCE, models.RbacPolicy.object_id == pool.id
    ).delete()
    common.drop_tags(session, RESOURCE, pool.id)
    session.delete(pool)


def _prefixes_body(request: rest.ApiRequest) -> list[str]:
    body = request.body
    if not isinstance(body, dict) or "prefixes" not in body:
        raise errors.bad_request("Bad subnetpools request: A prefixes list is required.")
    try:
        return R.subnet_list(body["prefixes"])
    except A.Invalid as exc:
        raise errors.invalid_input(f"Invalid input for prefixes. Reason: {exc}") from None


def _prefix_operation(
    request: rest.ApiRequest, session: Session, action: str
) -> tuple[models.SubnetPool, list[str], list[str]]:
    wanted = _prefixes_body(request)
    pool = get_visible(session, request.context, request.path_params["subnetpool_id"])
    common.enforce(request, action, target(pool, render(session, pool)["shared"]))
    return pool, SA.prefixes_of(session, [pool.id])[pool.id], wanted


def add_prefixes(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    pool, current, wanted = _prefix_operation(request, session, "add_prefixes")
    if wanted:
        _apply(request, session, pool, {"prefixes": current + wanted})
    return {"prefixes": SA.prefixes_of(session, [pool.id])[pool.id]}


def remove_prefixes(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    pool, current, wanted = _prefix_operation(request, session, "remove_prefixes")
    if not wanted or not R.overlaps(current, wanted):
        return {"prefixes": current}
    S = models.Subnet
    allocated = list(session.scalars(select(S.cidr).where(S.subnetpool_id == pool.id)))
    if R.overlaps(allocated, wanted):
        raise errors.bad_request(
            "Illegal update to prefixes: One or more the prefixes to be removed is in use by a "
            "subnet.",
            kind="IllegalSubnetPoolPrefixUpdate",
        )
    remaining = [str(n) for n in R.subtract(current, wanted)]
    SA.version_of(remaining)
    _check_scope_owner(session, request.context, pool)
    SA.set_prefixes(session, pool, R.collapse(remaining))
    common.bump(pool)
    session.flush()
    return {"prefixes": SA.prefixes_of(session, [pool.id])[pool.id]}


def onboard_network_subnets(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    """Adopt a network's subnets of the pool's IP version into the pool."""
    from stackbox.network import networks

    body = request.body if isinstance(request.body, dict) else {}
    network_id = body.get("network_id")
    if not network_id:
        raise errors.invalid_input("network_id must be specified.")
    ctx = request.context
    pool = get_visible(session, ctx, request.path_params["subnetpool_id"])
    common.enforce(
        request, "onboard_network_subnets", target(pool, render(session, pool)["shared"])
    )
    network = networks.get_visible(session, ctx, str(network_id))
    if not common.is_admin(ctx) and network.project_id != ctx.project_id:
        raise errors.forbidden("Not authorized.", kind="NotAuthorized")
    S = models.Subnet
    adopt = list(
        session.scalars(
            select(S).where(S.network_id == network.id, S.ip_version == pool.ip_version)
        )
    )
    allocated = list(session.scalars(select(S.cidr).where(S.subnetpool_id == pool.id)))
    for subnet in adopt:
        if subnet.subnetpool_id != pool.id and R.overlaps([subnet.cidr], allocated):
            raise errors.bad_request(
                f"Illegal subnetpool update : Onboarding subnet {subnet.id}: {subnet.cidr} "
                f"conflicts with allocated prefixes in subnet pool {pool.id}.",
                kind="IllegalSubnetPoolUpdate",
            )
    current = SA.prefixes_of(session, [pool.id])[pool.id]
    _apply(request, session, pool, {"prefixes": current + [s.cidr for s in adopt]})
    for subnet in adopt:
        if subnet.subnetpool_id != pool.id:
            subnet.subnetpool_id = pool.id
            common.bump(subnet)
    session.flush()
    return rest.ApiResponse(200, [{"id": s.id, "cidr": s.cidr} for s in adopt])


ROUTES = [
    rest.Route("POST", "/v2.0/subnetpools", create),
    rest.Route("GET", "/v2.0/subnetpools", list_pools),
    rest.Route("GET", "/v2.0/subnetpools/{subnetpool_id}", show),
    rest.Route("PUT", "/v2.0/subnetpools/{subnetpool_id}", update),
    rest.Route("DELETE", "/v2.0/subnetpools/{subnetpool_id}", delete),
    rest.Route("PUT", "/v2.0/subnetpools/{subnetpool_id}/add_prefixes", add_prefixes),
    rest.Route("PUT", "/v2.0/subnetpools/{subnetpool_id}/remove_prefixes", remove_prefixes),
    rest.Route(
        "PUT", "/v2.0/subnetpools/{subnetpool_id}/onboard_network_subnets", onboard_network_subnets
    ),
]
