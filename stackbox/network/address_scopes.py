"""Address scopes: sets of subnet pools whose addresses are routed without NAT.

Subnet pools join a scope of their IP version (their prefixes unique within it);
a network's ``ipv4_address_scope`` / ``ipv6_address_scope`` is the scope of the
pools its subnets came from. Like Neutron's, a scope has no standard attributes
(no description, timestamps or tags) and is seen by its owner, or by everyone
once shared.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from stackbox import context, rest
from stackbox.network import attributes as A
from stackbox.network import common, errors, models, rbac
from stackbox.network import ip_ranges as R

RESOURCE = "address_scope"

ATTRS = A.spec(
    A.Attr("id", sort=True),
    A.Attr("name", post=True, put=True, default="", validate=A.name_string(255), sort=True),
    A.Attr(
        "project_id", post=True, default=None, validate=A.name_string(255), sort=True, owner=True
    ),
    A.Attr(
        "tenant_id", post=True, default=None, validate=A.name_string(255), sort=True, owner=True
    ),
    A.Attr(
        "shared", post=True, put=True, default=False, validate=A.boolean, policy=True, sort=True
    ),
    A.Attr("ip_version", post=True, default=A.MISSING, validate=R.ip_version, sort=True),
)


def visible_clause(ctx: context.RequestContext) -> Any:
    S = models.AddressScope
    project = ctx.project_id or ""
    return or_(
        S.project_id == project,
        S.shared.is_(True),
        rbac.granted(RESOURCE, rbac.SHARED, project),
    )


def get_visible(
    session: Session, ctx: context.RequestContext, scope_id: str
) -> models.AddressScope:
    """The scope if ``ctx`` may see it; 404 AddressScopeNotFound otherwise."""
    query = select(models.AddressScope).where(models.AddressScope.id == scope_id)
    if not common.is_admin(ctx):
        query = query.where(visible_clause(ctx))
    scope = session.scalars(query).first()
    if scope is None:
        raise errors.not_found(
            "AddressScopeNotFound", f"Address scope {scope_id} could not be found."
        )
    return scope


def is_shared(session: Session, scope: models.AddressScope) -> bool:
    return scope.shared or rbac.wildcard(session, RESOURCE, scope.id, rbac.SHARED)


def render(session: Session, scope: models.AddressScope) -> dict[str, Any]:
    return {
        "id": scope.id,
        "name": scope.name,
        "project_id": scope.project_id,
        "tenant_id": scope.project_id,
        "shared": is_shared(session, scope),
        "ip_version": scope.ip_version,
    }


def target(scope: models.AddressScope, shared: bool) -> dict[str, Any]:
    return {"project_id": scope.project_id, "shared": str(shared)}


def of_networks(session: Session, network_ids: Iterable[str]) -> dict[str, dict[int, str | None]]:
    """Each network's address scope per IP version (from its subnets' pools), or None."""
    wanted = list(network_ids)
    found: dict[str, dict[int, str | None]] = {i: {4: None, 6: None} for i in wanted}
    S, P = models.Subnet, models.SubnetPool
    for start in range(0, len(wanted), 500):
        rows = session.execute(
            select(S.network_id, S.ip_version, func.min(P.address_scope_id))
            .join(P, P.id == S.subnetpool_id)
            .where(S.network_id.in_(wanted[start : start + 500]), P.address_scope_id.is_not(None))
            .group_by(S.network_id, S.ip_version)
        )
        for network_id, version, scope_id in rows:
            found[network_id][version] = scope_id
    return found


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    item = A.body_of(request, RESOURCE)
    spec = A.parse(ATTRS, item, create=True, resource=RESOURCE)
    ctx = request.context
    project_id = spec.get("project_id") or spec.get("tenant_id") or ctx.project_id or ""
    given = [k for k in item if k not in ("project_id", "tenant_id")]
    common.enforce(request, "create_address_scope", {"project_id": project_id}, ATTRS, given)
    if project_id != ctx.project_id and not common.is_admin(ctx):
        raise errors.forbidden("(create_address_scope) is disallowed by policy")
    scope = models.AddressScope(
        name=spec["name"], shared=spec["shared"], ip_version=spec["ip_version"]
    )
    common.stamp_new(scope, ctx, project_id)
    session.add(scope)
    session.flush()
    return rest.ApiResponse(201, {RESOURCE: render(session, scope)})


def list_scopes(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    query = select(models.AddressScope)
    if not common.is_admin(request.context):
        query = query.where(visible_clause(request.context))
    bodies = [render(session, s) for s in session.scalars(query)]
    return common.collection(request, "address_scopes", bodies, ATTRS)


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    scope = get_visible(session, request.context, request.path_params["address_scope_id"])
    body = render(session, scope)
    common.enforce(request, "get_address_scope", target(scope, body["shared"]), hide_missing=True)
    return {RESOURCE: common.fields_wanted(request, body)}


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    item = A.body_of(request, RESOURCE)
    spec = A.parse(ATTRS, item, create=False, resource=RESOURCE)
    scope = get_visible(session, request.context, request.path_params["address_scope_id"])
    shared = is_shared(session, scope)
    common.enforce(request, "update_address_scope", target(scope, shared), ATTRS, item)
    if "shared" in spec and shared and not spec["shared"]:
        raise errors.bad_request(
            f"Unable to update address scope {scope.id} : Shared address scope can't be unshared.",
            kind="AddressScopeUpdateError",
        )
    if "name" in spec:
        scope.name = spec["name"]
    if spec.get("shared"):
        scope.shared = True
    common.bump(scope)
    session.flush()
    return {RESOURCE: render(session, scope)}


def delete(request: rest.ApiRequest, session: Session) -> None:
    scope = get_visible(session, request.context, request.path_params["address_scope_id"])
    common.enforce(request, "delete_address_scope", target(scope, is_shared(session, scope)))
    in_use = session.scalar(
        select(func.count())
        .select_from(models.SubnetPool)
        .where(models.SubnetPool.address_scope_id == scope.id)
    )
    if in_use:
        raise errors.in_use(
            "AddressScopeInUse",
            f"Unable to complete operation on address scope {scope.id}. There are one or more "
            "subnet pools in use on the address scope.",
        )
    session.query(models.RbacPolicy).filter(
        models.RbacPolicy.object_type == RESOURCE, models.RbacPolicy.object_id == scope.id
    ).delete()
    session.delete(scope)


ROUTES = [
    rest.Route("POST", "/v2.0/address-scopes", create),
    rest.Route("GET", "/v2.0/address-scopes", list_scopes),
    rest.Route("GET", "/v2.0/address-scopes/{address_scope_id}", show),
    rest.Route("PUT", "/v2.0/address-scopes/{address_scope_id}", update),
    rest.Route("DELETE", "/v2.0/address-scopes/{address_scope_id}", delete),
]
