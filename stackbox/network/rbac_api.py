"""/v2.0/rbac-policies: share objects with projects (or everyone) and take it back.

Object types: ``network`` (``access_as_shared``, ``access_as_external``) and
``security_group`` (``access_as_shared``), plus ``subnetpool`` and ``address_scope``
once their modules serve the rbac-subnetpool / rbac-address-scope extensions. Only
the object's owner (or an admin) may write its policies, only admins may target
``*``, and a policy that a project still depends on (its ports on the shared
network, its routers on the external one, ...) cannot be removed or retargeted
(409 RbacPolicyInUse), as in Neutron.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stackbox import context, rest
from stackbox.network import attributes as A
from stackbox.network import common, errors, extensions, models, notify, quotas, rbac

RESOURCE = "rbac_policy"
COLLECTION = "rbac_policies"


@dataclasses.dataclass(frozen=True)
class ObjectType:
    model: Any
    actions: tuple[str, ...]
    # The extension alias that must be served for the type to be (None: always).
    alias: str | None
    not_found: str


OBJECT_TYPES = {
    "network": ObjectType(models.Network, (rbac.EXTERNAL, rbac.SHARED), None, "network"),
    "security_group": ObjectType(
        models.SecurityGroup, (rbac.SHARED,), "rbac-security-groups", "security_group"
    ),
    "subnetpool": ObjectType(models.SubnetPool, (rbac.SHARED,), "rbac-subnetpool", "subnetpool"),
    "address_scope": ObjectType(
        models.AddressScope, (rbac.SHARED,), "rbac-address-scope", "address_scope"
    ),
}


def served_types() -> list[str]:
    return [
        name
        for name, kind in OBJECT_TYPES.items()
        if kind.alias is None or kind.alias in extensions.EXTENSIONS
    ]


def _object_type(value: Any) -> str:
    normalized = value.strip().lower() if isinstance(value, str) else value
    if normalized not in served_types():
        raise errors.invalid_input(f"'{value}' is not a valid RBAC object type")
    return str(normalized)


def _target_project(value: Any) -> str:
    if value == rbac.WILDCARD:
        return value
    if isinstance(value, str):
        try:
            uuid.UUID(value)
            return value
        except ValueError:
            pass
    raise A.Invalid(f"'{value}' is not a valid target project ID; expected a UUID or '*'")


ATTRS = A.spec(
    A.Attr("id"),
    A.Attr("object_type", post=True, default=A.MISSING, validate=_object_type, sort=True),
    A.Attr("object_id", post=True, default=A.MISSING, validate=A.uuid_string, sort=True),
    A.Attr(
        "target_tenant", post=True, put=True, default=None, validate=_target_project, policy=True
    ),
    A.Attr(
        "target_project", post=True, put=True, default=None, validate=_target_project, policy=True
    ),
    A.Attr(
        "project_id", post=True, default=None, validate=A.name_string(255), sort=True, owner=True
    ),
    A.Attr(
        "tenant_id", post=True, default=None, validate=A.name_string(255), sort=True, owner=True
    ),
    A.Attr("action", post=True, default=A.MISSING, validate=A.name_string(255), sort=True),
)


def not_found(ident: str, object_type: str = "unknown") -> rest.NotFound:
    return errors.not_found(
        "RbacPolicyNotFound", f"RBAC policy of type {object_type} with ID {ident} not found"
    )


def in_use(object_id: str, details: str) -> rest.Conflict:
    return errors.conflict(
        "RbacPolicyInUse",
        f"RBAC policy on object {object_id} cannot be removed because other objects depend "
        f"on it.\nDetails: {details}",
    )


def render(policy: models.RbacPolicy) -> dict[str, Any]:
    return {
        "id": policy.id,
        "project_id": policy.project_id,
        "tenant_id": policy.project_id,
        "object_type": policy.object_type,
        "object_id": policy.object_id,
        "action": policy.action,
        "target_tenant": policy.target_project,
        "target_project": policy.target_project,
    }


def _policy_target(project_id: str, target_project: str | None) -> dict[str, Any]:
    return {"project_id": project_id, "wildcard_target": str(target_project == rbac.WILDCARD)}


# --- the shared object ------------------------------------------------------------------------


def _visible_object(
    session: Session, ctx: context.RequestContext, kind: str, object_id: str
) -> Any:
    """The object if the caller may see it (404 in the object's own type otherwise)."""
    spec = OBJECT_TYPES[kind]
    row = session.get(spec.model, object_id)
    if row is not None and not common.is_admin(ctx) and row.project_id != ctx.project_id:
        granted = select(models.RbacPolicy.id).where(
            models.RbacPolicy.object_type == kind,
            models.RbacPolicy.object_id == object_id,
            models.RbacPolicy.target_project.in_((ctx.project_id or "", rbac.WILDCARD)),
        )
        if session.scalar(granted) is None and not getattr(row, "shared", False):
            row = None
    if row is None:
        raise errors.resource_not_found(spec.not_found, object_id)
    return row


def _bump(session: Session, kind: str, row: Any) -> None:
    common.bump(row)
    if kind == "network":
        notify.network(session, row.id)
    elif kind == "security_group":
        notify.security_group(session, row.id)


def _entries(session: Session, kind: str, object_id: str, action: str) -> list[models.RbacPolicy]:
    R = models.RbacPolicy
    return list(
        session.scalars(
            select(R).where(R.object_type == kind, R.object_id == object_id, R.action == action)
        )
    )


def _bound_projects(session: Session, kind: str, object_id: str) -> set[str]:
    """Projects whose resources rely on access to the object (Neutron's bound projects)."""
    P = models.Port
    if kind == "network":
        query = select(P.project_id).where(P.network_id == object_id)
    elif kind == "security_group":
        query = (
            select(P.project_id)
            .join(models.PortSecurityGroup, models.PortSecurityGroup.port_id == P.id)
            .where(models.PortSecurityGroup.security_group_id == object_id)
        )
    elif kind == "subnetpool":
        query = select(models.Subnet.project_id).where(models.Subnet.subnetpool_id == object_id)
    else:
        query = select(models.SubnetPool.project_id).where(
            models.SubnetPool.address_scope_id == object_id
        )
    return {p for p in session.scalars(query.distinct()) if p}


def _routers_on(session: Session, network_id: str) -> list[models.Router]:
    gateway_ports = select(models.Port.id).where(
        models.Port.network_id == network_id,
        models.Port.device_owner == "network:router_gateway",
    )
    return list(
        session.scalars(select(models.Router).where(models.Router.gw_port_id.in_(gateway_ports)))
    )


def _check_release(
    session: Session, policy: models.RbacPolicy, owner: str, replacement: str | None = None
) -> None:
    """409 if taking ``policy`` away (or moving it to ``replacement``) strands a project."""
    kind, object_id, losing = policy.object_type, policy.object_id, policy.target_project
    if losing == owner:
        return
    others = {
        p.target_project
        for p in _entries(session, kind, object_id, policy.action)
        if p.id != policy.id
    }
    if replacement is not None:
        others.add(replacement)
    if policy.action == rbac.EXTERNAL:
        if losing == rbac.WILDCARD:
            network = session.get(models.Network, object_id)
            if network is not None and network.is_default:
                raise in_use(object_id, "Default external networks must be shared to everyone.")
        if rbac.WILDCARD in others:
            return
        allowed = others | {owner}
        stranded = [
            r
            for r in _routers_on(session, object_id)
            if (r.project_id == losing if losing != rbac.WILDCARD else r.project_id not in allowed)
        ]
        if stranded:
            raise in_use(
                object_id,
                "There are routers attached to this network that depend on this policy for access.",
            )
        return
    if rbac.WILDCARD in others:
        return
    bound = _bound_projects(session, kind, object_id) - {owner}
    stranded_projects = bound - others if losing == rbac.WILDCARD else bound & {losing}
    if stranded_projects:
        raise in_use(object_id, f"project_id={losing}")


# --- handlers ---------------------------------------------------------------------------------


def _create_one(
    request: rest.ApiRequest, session: Session, item: dict[str, Any]
) -> models.RbacPolicy:
    ctx = request.context
    spec = A.parse(ATTRS, item, create=True, resource=RESOURCE)
    target_project = spec.get("target_project") or spec.get("target_tenant")
    if target_project is None:
        raise errors.bad_request(
            "Failed to parse request. Required attribute 'target_tenant' not specified"
        )
    kind, action = spec["object_type"], spec["action"]
    project_id = spec.get("project_id") or spec.get("tenant_id") or ctx.project_id or ""
    common.enforce(
        request,
        "create_rbac_policy",
        _policy_target(project_id, target_project),
        ATTRS,
        [k for k in item if k not in ("project_id", "tenant_id")],
    )
    valid = OBJECT_TYPES[kind].actions
    if action not in valid:
        raise errors.bad_request(
            f"Invalid action '{action}' for object type '{kind}'. Valid actions: {list(valid)}",
            kind="InvalidActionForType",
        )
    row = _visible_object(session, ctx, kind, spec["object_id"])
    if not common.is_admin(ctx) and row.project_id != ctx.project_id:
        noun = "networks" if kind == "network" else "objects"
        raise errors.invalid_input(f"Only admins can manipulate policies on {noun} they do not own")
    quotas.check(session, project_id, RESOURCE)
    policy = models.RbacPolicy(
        id=common.new_id(),
        project_id=project_id,
        object_type=kind,
        object_id=row.id,
        action=action,
        target_project=target_project,
    )
    try:
        with session.begin_nested():
            session.add(policy)
    except IntegrityError:
        raise errors.conflict(
            "DuplicateRbacPolicy", "An RBAC policy already exists with those values."
        ) from None
    if kind == "network" and action == rbac.EXTERNAL and not row.external:
        row.external = True  # Neutron makes the network external, without a wildcard entry
    _bump(session, kind, row)
    return policy


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    body = request.body
    if isinstance(body, dict) and isinstance(body.get(COLLECTION), list) and RESOURCE not in body:
        items = body[COLLECTION]
        if not items or not all(
            isinstance(i, dict) and isinstance(i.get(RESOURCE), dict) for i in items
        ):
            raise errors.bad_request(f"Unable to find '{RESOURCE}' in request body")
        made = [_create_one(request, session, i[RESOURCE]) for i in items]
        return rest.ApiResponse(201, {COLLECTION: [render(p) for p in made]})
    policy = _create_one(request, session, A.body_of(request, RESOURCE))
    return rest.ApiResponse(201, {RESOURCE: render(policy)})


def _visible_query(ctx: context.RequestContext) -> Any:
    query = select(models.RbacPolicy).where(models.RbacPolicy.object_type.in_(served_types()))
    if not common.is_admin(ctx):
        query = query.where(models.RbacPolicy.project_id == (ctx.project_id or ""))
    return query


def get_visible(session: Session, ctx: context.RequestContext, policy_id: str) -> models.RbacPolicy:
    policy = session.scalars(_visible_query(ctx).where(models.RbacPolicy.id == policy_id)).first()
    if policy is None:
        raise not_found(policy_id)
    return policy


def list_policies(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    policies = list(session.scalars(_visible_query(request.context)))
    return common.collection(request, COLLECTION, [render(p) for p in policies], ATTRS)


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    policy = get_visible(session, request.context, request.path_params["rbac_policy_id"])
    common.enforce(request, "get_rbac_policy", {"project_id": policy.project_id}, hide_missing=True)
    return {RESOURCE: common.fields_wanted(request, render(policy))}


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ctx = request.context
    item = A.body_of(request, RESOURCE)
    spec = A.parse(ATTRS, item, create=False, resource=RESOURCE)
    policy = get_visible(session, ctx, request.path_params["rbac_policy_id"])
    new_target = spec.get("target_project") or spec.get("target_tenant")
    common.enforce(
        request,
        "update_rbac_policy",
        _policy_target(policy.project_id, new_target),
        ATTRS,
        item,
    )
    row = _visible_object(session, ctx, policy.object_type, policy.object_id)
    if not common.is_admin(ctx) and row.project_id != ctx.project_id:
        raise errors.invalid_input("Only admins can manipulate policies on objects they do not own")
    if new_target is not None and new_target != policy.target_project:
        _check_release(session, policy, row.project_id, replacement=new_target)
        policy.target_project = new_target
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:
            raise errors.conflict(
                "DuplicateRbacPolicy", "An RBAC policy already exists with those values."
            ) from None
        _bump(session, policy.object_type, row)
    return {RESOURCE: render(policy)}


def delete(request: rest.ApiRequest, session: Session) -> None:
    ctx = request.context
    policy = get_visible(session, ctx, request.path_params["rbac_policy_id"])
    common.enforce(request, "delete_rbac_policy", {"project_id": policy.project_id})
    row = session.get(OBJECT_TYPES[policy.object_type].model, policy.object_id)
    if row is not None:
        _check_release(session, policy, row.project_id)
    kind, action = policy.object_type, policy.action
    session.delete(policy)
    session.flush()
    if row is None:
        return
    if (
        kind == "network"
        and action == rbac.EXTERNAL
        and not _entries(session, kind, row.id, action)
    ):
        row.external = False  # the last external policy gone: no longer external (Neutron)
    _bump(session, kind, row)


ROUTES = [
    rest.Route("POST", "/v2.0/rbac-policies", create),
    rest.Route("GET", "/v2.0/rbac-policies", list_policies),
    rest.Route("GET", "/v2.0/rbac-policies/{rbac_policy_id}", show),
    rest.Route("PUT", "/v2.0/rbac-policies/{rbac_policy_id}", update),
    rest.Route("DELETE", "/v2.0/rbac-policies/{rbac_policy_id}", delete),
]
