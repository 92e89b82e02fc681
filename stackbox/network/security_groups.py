"""Security groups: each project's ``default`` group, sharing through RBAC, and deletion rules.

Contract used by ports: ``ensure_default(session, project_id) -> str`` returns the id of the
project's "default" group, creating it (with Neutron's default rules) on first use; and
``check_for_port(session, ctx, project_id, ids)`` checks the groups a port asks for (404 for
one its project may not use, 409 for stateful and stateless together).

A project's ``default`` group appears on first use (listing groups or rules, showing or
creating a group, creating a port); the ``net_default_security_group`` primary key keeps
concurrent first uses from making two. Listings create it in a short write transaction of
their own and then read, so a plain GET never holds the write lock while it renders.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stackbox import context, rest
from stackbox.db import session as db_session
from stackbox.network import attributes as A
from stackbox.network import common, errors, models, notify, quotas, rbac
from stackbox.network import security_group_checks as checks
from stackbox.network import security_group_rules as rules

RESOURCE = "security_group"
COLLECTION = "security_groups"
DEFAULT_NAME = "default"
DEFAULT_DESCRIPTION = "Default security group"


def _name_not_default(value: Any) -> str:
    name: str = A.name_string(255)(value)
    if name.lower() == DEFAULT_NAME:
        raise errors.conflict(
            "SecurityGroupDefaultAlreadyExists", "Default security group already exists."
        )
    return name


ATTRS = A.spec(
    A.Attr("id", sort=True),
    A.Attr("name", post=True, put=True, default="", validate=_name_not_default, sort=True),
    A.Attr("description", post=True, put=True, default="", validate=A.name_string(255)),
    A.Attr(
        "project_id", post=True, default=None, validate=A.name_string(255), sort=True, owner=True
    ),
    A.Attr(
        "tenant_id", post=True, default=None, validate=A.name_string(255), sort=True, owner=True
    ),
    A.Attr("stateful", post=True, put=True, default=True, validate=A.boolean, sort=True),
    A.Attr("shared", sort=True),
    A.Attr("security_group_rules", filter=False),
    A.Attr("revision_number", sort=True),
    A.Attr("created_at", sort=True),
    A.Attr("updated_at", sort=True),
    A.Attr("tags", filter=False),
)


def not_found(ident: str) -> rest.NotFound:
    return rules.group_not_found(ident)


# --- the default group ------------------------------------------------------------------------


def _new_group(
    session: Session, project_id: str, name: str, description: str, stateful: bool, default: bool
) -> models.SecurityGroup:
    moment = common.now()
    group = models.SecurityGroup(
        id=common.new_id(),
        project_id=project_id,
        name=name,
        description=description,
        stateful=stateful,
        created_at=moment,
        updated_at=moment,
        revision_number=0,
    )
    session.add(group)
    session.flush()
    session.add_all(rules.default_rules(group, default))
    return group


def default_id(session: Session, project_id: str) -> str | None:
    return session.scalar(
        select(models.DefaultSecurityGroup.security_group_id).where(
            models.DefaultSecurityGroup.project_id == project_id
        )
    )


def ensure_default(session: Session, project_id: str) -> str:
    """The project's ``default`` group, made with Neutron's default rules if missing."""
    found = default_id(session, project_id)
    if found is not None:
        return found
    try:
        # A savepoint: a concurrent creator's row (PostgreSQL) costs only this attempt.
        with session.begin_nested():
            group = _new_group(session, project_id, DEFAULT_NAME, DEFAULT_DESCRIPTION, True, True)
            session.add(
                models.DefaultSecurityGroup(project_id=project_id, security_group_id=group.id)
            )
    except IntegrityError:
        found = default_id(session, project_id)
        if found is None:
            raise
        return found
    notify.security_group(session, group.id)
    return group.id


def _default_project(request: rest.ApiRequest) -> str | None:
    """Whose default group a listing should make sure of (Neutron: the filter's, or yours)."""
    ctx = request.context
    wanted = request.query.get("project_id") or request.query.get("tenant_id")
    project = wanted[0] if wanted else ctx.project_id
    if not project or (project != ctx.project_id and not common.is_admin(ctx)):
        return None
    return project


def _ensure_committed(db: db_session.Database, project_id: str | None) -> None:
    if not project_id:
        return
    if db.run(lambda s: default_id(s, project_id), write=False) is None:
        db.run(lambda s: ensure_default(s, project_id), write=True)


# --- visibility and rendering -----------------------------------------------------------------


def visible_query(ctx: context.RequestContext) -> Any:
    query = select(models.SecurityGroup)
    if not common.is_admin(ctx):
        project = ctx.project_id or ""
        query = query.where(
            (models.SecurityGroup.project_id == project)
            | rbac.granted("security_group", rbac.SHARED, project)
        )
    return query


def get_visible(
    session: Session, ctx: context.RequestContext, group_id: str
) -> models.SecurityGroup:
    """The group if ``ctx`` may see it (own, shared with it, admin); 404 otherwise."""
    group = rules.group_visible(session, ctx, group_id)
    if group is None:
        raise not_found(group_id)
    return group


def render_many(
    session: Session, ctx: context.RequestContext, groups: list[models.SecurityGroup]
) -> list[dict[str, Any]]:
    ids = [g.id for g in groups]
    tags = common.tags_of(session, RESOURCE, ids)
    shared = rbac.shared_with(session, RESOURCE, ids, ctx.project_id or "")
    defaults = rules.default_group_ids(session, ids)
    by_group: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    for start in range(0, len(ids), 500):
        found = session.scalars(
            select(models.SecurityGroupRule)
            .where(models.SecurityGroupRule.security_group_id.in_(ids[start : start + 500]))
            .order_by(models.SecurityGroupRule.created_at, models.SecurityGroupRule.id)
        )
        for rule in found:
            by_group[rule.security_group_id].append(
                rules.view(rule, rule.security_group_id in defaults)
            )
    bodies = []
    for group in groups:
        body = common.standard(group, tags[group.id])
        body.update(
            {
                "name": group.name,
                "stateful": group.stateful,
                "shared": group.id in shared,
                "security_group_rules": by_group[group.id],
            }
        )
        bodies.append(body)
    return bodies


def render(
    session: Session, ctx: context.RequestContext, group: models.SecurityGroup
) -> dict[str, Any]:
    return render_many(session, ctx, [group])[0]


def target(group: models.SecurityGroup, shared: bool = False) -> dict[str, Any]:
    return {
        "project_id": group.project_id,
        "security_group:project_id": group.project_id,
        "shared": str(shared),
    }


def _in_use(session: Session, group_id: str) -> bool:
    return (
        session.scalar(
            select(models.PortSecurityGroup.port_id)
            .where(models.PortSecurityGroup.security_group_id == group_id)
            .limit(1)
        )
        is not None
    )


def _group_in_use(group_id: str) -> rest.Conflict:
    return errors.in_use("SecurityGroupInUse", f"Security Group {group_id} in use.")


# --- the ports' side --------------------------------------------------------------------------


def check_for_port(
    session: Session, ctx: context.RequestContext, project_id: str, ids: list[str]
) -> list[str]:
    """The groups a port of ``project_id`` asks for: 404 (SecurityGroupNotFound) for any it
    may not use, 409 when stateful and stateless groups are mixed."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    groups = {
        g.id: g
        for g in session.scalars(
            select(models.SecurityGroup).where(models.SecurityGroup.id.in_(wanted))
        )
    }
    shared = rbac.shared_with(session, RESOURCE, list(groups), project_id)
    usable = {
        i
        for i, g in groups.items()
        if common.is_admin(ctx) or g.project_id == project_id or i in shared
    }
    missing = [i for i in wanted if i not in usable]
    if missing:
        raise errors.not_found(
            "SecurityGroupNotFound", f"Security group {', '.join(missing)} does not exist"
        )
    if len({groups[i].stateful for i in wanted}) > 1:
        raise errors.conflict(
            "SecurityGroupConflict",
            "Error Cannot apply both stateful and stateless security groups on the same port "
            "at the same time while attempting the operation.",
        )
    return wanted


# --- handlers ---------------------------------------------------------------------------------


def _create_one(
    request: rest.ApiRequest, session: Session, item: dict[str, Any]
) -> models.SecurityGroup:
    ctx = request.context
    spec = A.parse(ATTRS, item, create=True, resource=RESOURCE)
    project_id = spec.get("project_id") or spec.get("tenant_id") or ctx.project_id or ""
    common.enforce(
        request,
        "create_security_group",
        {"project_id": project_id},
        ATTRS,
        [k for k in item if k not in ("project_id", "tenant_id")],
    )
    ensure_default(session, project_id)
    quotas.check(session, project_id, RESOURCE)
    quotas.check(session, project_id, rules.RESOURCE, adding=len(checks.ETHERTYPES))
    group = _new_group(
        session, project_id, spec["name"], spec["description"], spec["stateful"], False
    )
    session.flush()
    notify.security_group(session, group.id)
    return group


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    """POST one group, or ``{"security_groups": [...]}`` all or nothing."""
    body = request.body
    if isinstance(body, dict) and isinstance(body.get(COLLECTION), list) and RESOURCE not in body:
        items = body[COLLECTION]
        if not items or not all(
            isinstance(i, dict) and isinstance(i.get(RESOURCE), dict) for i in items
        ):
            raise errors.bad_request(f"Unable to find '{RESOURCE}' in request body")
        groups = [_create_one(request, session, i[RESOURCE]) for i in items]
        return rest.ApiResponse(201, {COLLECTION: render_many(session, request.context, groups)})
    group = _create_one(request, session, A.body_of(request, RESOURCE))
    return rest.ApiResponse(201, {RESOURCE: render(session, request.context, group)})


def _shared_filter(item: dict[str, Any], wanted: list[str]) -> bool:
    return any(
        A.boolean(w) == item["shared"] for w in wanted if w.lower() in ("true", "false", "1", "0")
    )


def list_groups(request: rest.ApiRequest, db: db_session.Database) -> dict[str, Any]:
    _ensure_committed(db, _default_project(request))

    def read(session: Session) -> dict[str, Any]:
        groups = list(session.scalars(visible_query(request.context)))
        bodies = render_many(session, request.context, groups)
        return common.collection(
            request, COLLECTION, bodies, ATTRS, special={"shared": _shared_filter}
        )

    return db.run(read, write=False)


def show(request: rest.ApiRequest, db: db_session.Database) -> dict[str, Any]:
    _ensure_committed(db, request.context.project_id)

    def read(session: Session) -> dict[str, Any]:
        group = get_visible(session, request.context, request.path_params["security_group_id"])
        body = render(session, request.context, group)
        common.enforce(
            request, "get_security_group", target(group, body["shared"]), hide_missing=True
        )
        return {RESOURCE: common.fields_wanted(request, body)}

    return db.run(read, write=False)


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    item = A.body_of(request, RESOURCE)
    group = get_visible(session, request.context, request.path_params["security_group_id"])
    spec = A.parse(ATTRS, item, create=False, resource=RESOURCE)
    common.enforce(request, "update_security_group", target(group), ATTRS, item)
    common.check_revision(request, group)
    if "name" in spec and default_id(session, group.project_id) == group.id:
        raise errors.in_use(
            "SecurityGroupCannotUpdateDefault", "Updating default security group not allowed."
        )
    if "stateful" in spec and spec["stateful"] != group.stateful and _in_use(session, group.id):
        raise _group_in_use(group.id)
    for key in ("name", "description", "stateful"):
        if key in spec:
            setattr(group, key, spec[key])
    common.bump(group)
    session.flush()
    notify.security_group(session, group.id)
    return {RESOURCE: render(session, request.context, group)}


def delete(request: rest.ApiRequest, session: Session) -> None:
    ctx = request.context
    group = get_visible(session, ctx, request.path_params["security_group_id"])
    common.enforce(request, "delete_security_group", target(group))
    common.check_revision(request, group)
    if _in_use(session, group.id):
        raise _group_in_use(group.id)
    if group.name == DEFAULT_NAME and not common.is_admin(ctx):
        raise errors.in_use(
            "SecurityGroupCannotRemoveDefault",
            "Insufficient rights for removing default security group.",
        )
    # Rules elsewhere that name this group as their remote go with it (Neutron's cascade).
    R = models.SecurityGroupRule
    referring = set(
        session.scalars(
            select(R.security_group_id).where(
                R.remote_group_id == group.id, R.security_group_id != group.id
            )
        )
    )
    session.query(R).filter(R.remote_group_id == group.id).delete(synchronize_session=False)
    session.query(R).filter(R.security_group_id == group.id).delete(synchronize_session=False)
    session.query(models.DefaultSecurityGroup).filter(
        models.DefaultSecurityGroup.security_group_id == group.id
    ).delete(synchronize_session=False)
    session.query(models.RbacPolicy).filter(
        models.RbacPolicy.object_type == RESOURCE, models.RbacPolicy.object_id == group.id
    ).delete(synchronize_session=False)
    common.drop_tags(session, RESOURCE, group.id)
    session.delete(group)
    for other in sorted(referring):
        notify.security_group(session, other)
    notify.security_group(session, group.id)


def list_rules(request: rest.ApiRequest, db: db_session.Database) -> dict[str, Any]:
    _ensure_committed(db, _default_project(request))
    return db.run(lambda s: rules.list_rules(request, s), write=False)


ROUTES = [
    rest.Route("POST", "/v2.0/security-groups", create),
    rest.Route("GET", "/v2.0/security-groups", list_groups, manual_tx=True),
    rest.Route("GET", "/v2.0/security-groups/{security_group_id}", show, manual_tx=True),
    rest.Route("PUT", "/v2.0/security-groups/{security_group_id}", update),
    rest.Route("DELETE", "/v2.0/security-groups/{security_group_id}", delete),
    rest.Route("GET", "/v2.0/security-group-rules", list_rules, manual_tx=True),
    *rules.ROUTES,
]
