"""Role grants: a role for a user or group on a project, a domain or the system,
and OS-INHERIT grants that flow down to every project below."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.identity import (
    app_creds,
    errors,
    groups,
    models,
    projects,
    resources,
    roles,
    runtime,
    users,
)

SYSTEM = "all"


@dataclasses.dataclass
class Grant:
    actor_type: str  # user | group
    actor_id: str
    target_type: str  # project | domain | system
    target_id: str
    inherited: bool
    target: dict[str, Any]  # the policy target
    actor_domain_id: str | None = None


def _resolve(
    request: rest.ApiRequest,
    session: Session,
    actor_type: str,
    target_type: str,
    inherited: bool,
    action: str,
    role: models.Role | None = None,
    role_id: str | None = None,
) -> Grant:
    """Load actor and target (404s after the policy check, as Keystone orders them)."""
    params = request.path_params
    actor_id = params["user_id"] if actor_type == "user" else params["group_id"]
    target_id = SYSTEM if target_type == "system" else params[f"{target_type}_id"]
    policy_target: dict[str, Any] = {}
    missing: rest.ApiError | None = None

    if actor_type == "user":
        user = session.get(models.User, actor_id)
        policy_target.update(users.target(user) if user else {"user": {"id": actor_id}})
        actor_domain = user.domain_id if user else None
        if user is None:
            missing = errors.not_found("user", actor_id)
    else:
        group = session.get(models.Group, actor_id)
        policy_target.update(groups.target(group) if group else {"group": {"id": actor_id}})
        actor_domain = group.domain_id if group else None
        if group is None:
            missing = errors.not_found("group", actor_id)

    if target_type == "project":
        project = session.get(models.Project, target_id)
        if project is None or project.is_domain:
            policy_target["project"] = {"id": target_id}
            missing = missing or errors.not_found("project", target_id)
        else:
            policy_target.update(projects.target(project))
    elif target_type == "domain":
        domain = session.get(models.Project, target_id)
        policy_target["domain"] = {"id": target_id}
        if domain is None or not domain.is_domain:
            missing = missing or errors.not_found("domain", target_id)

    if role is not None:
        policy_target.update(roles.target(role))
    elif role_id is not None:
        policy_target["role"] = {"id": role_id, "name": None, "domain_id": None}
        missing = missing or errors.not_found("role", role_id)

    resources.enforce(request, action, policy_target)
    if missing is not None:
        raise missing
    return Grant(
        actor_type, actor_id, target_type, target_id, inherited, policy_target, actor_domain
    )


def _key(grant: Grant, role_id: str) -> tuple[str, str, str, str, str, bool]:
    return (
        grant.actor_type,
        grant.actor_id,
        grant.target_type,
        grant.target_id,
        role_id,
        grant.inherited,
    )


def _action(target_type: str, actor_type: str, verb: str) -> str:
    if target_type == "system":
        names = {"create": "create", "check": "check", "revoke": "revoke", "list": "list"}
        return (
            f"identity:{names[verb]}_system_grant{'s' if verb == 'list' else ''}_for_{actor_type}"
        )
    return {
        "create": "identity:create_grant",
        "check": "identity:check_grant",
        "revoke": "identity:revoke_grant",
        "list": "identity:list_grants",
    }[verb]


def _check_domain_role(session: Session, grant: Grant, role: models.Role) -> None:
    role_domain = roles.domain_of(role)
    if role_domain is None:
        return
    if grant.target_type == "system":
        raise rest.BadRequest("A domain-specific role cannot be assigned on the system.")
    target_domain = (
        grant.target_id
        if grant.target_type == "domain"
        else grant.target["project"].get("domain_id")
    )
    if target_domain != role_domain:
        raise rest.Forbidden(
            f"Project {grant.target_id} must be in the same domain as the role {role.id} "
            "being assigned."
        )


def _handlers(actor_type: str, target_type: str, inherited: bool) -> list[rest.Route]:
    def stored(
        request: rest.ApiRequest, session: Session, verb: str
    ) -> tuple[Grant, models.Role, models.Assignment | None]:
        """The grant a route names, its role, and the stored assignment if there is one."""
        role_id = request.path_params["role_id"]
        role = session.get(models.Role, role_id)
        grant = _resolve(
            request,
            session,
            actor_type,
            target_type,
            inherited,
            _action(target_type, actor_type, verb),
            role,
            role_id,
        )
        assert role is not None  # _resolve raised 404 otherwise
        return grant, role, session.get(models.Assignment, _key(grant, role.id))

    def put(request: rest.ApiRequest, session: Session) -> None:
        grant, role, existing = stored(request, session, "create")
        _check_domain_role(session, grant, role)
        if existing is None:
            session.add(
                models.Assignment(
                    actor_type=actor_type,
                    actor_id=grant.actor_id,
                    target_type=target_type,
                    target_id=grant.target_id,
                    role_id=role.id,
                    inherited=inherited,
                )
            )
            runtime.changed(session)

    def check(request: rest.ApiRequest, session: Session) -> None:
        grant, role, existing = stored(request, session, "check")
        if existing is None:
            raise _assignment_not_found(role.id, grant)

    def revoke(request: rest.ApiRequest, session: Session) -> None:
        grant, role, existing = stored(request, session, "revoke")
        if existing is None:
            raise _assignment_not_found(role.id, grant)
        session.delete(existing)
        if actor_type == "user" and target_type == "project" and not inherited:
            # As Keystone: credentials made from a role the user no longer has are gone.
            app_creds.delete_for_user(session, grant.actor_id, grant.target_id)
        runtime.changed(session)

    def list_(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
        grant = _resolve(
            request,
            session,
            actor_type,
            target_type,
            inherited,
            _action(target_type, actor_type, "list"),
        )
        A = models.Assignment
        rows = session.scalars(
            select(models.Role)
            .join(A, A.role_id == models.Role.id)
            .where(
                A.actor_type == actor_type,
                A.actor_id == grant.actor_id,
                A.target_type == target_type,
                A.target_id == grant.target_id,
                A.inherited.is_(inherited),
            )
            .order_by(models.Role.name)
        )
        return {
            "roles": [roles.render(r) for r in rows],
            "links": resources.collection_links(request),
        }

    if target_type == "system":
        base = f"/v3/system/{actor_type}s/{{{actor_type}_id}}/roles"
        one = base + "/{role_id}"
        many = base
    elif inherited:
        base = (
            f"/v3/OS-INHERIT/{target_type}s/{{{target_type}_id}}/{actor_type}s/{{{actor_type}_id}}"
        )
        one = base + "/roles/{role_id}/inherited_to_projects"
        many = base + "/roles/inherited_to_projects"
    else:
        base = f"/v3/{target_type}s/{{{target_type}_id}}/{actor_type}s/{{{actor_type}_id}}/roles"
        one = base + "/{role_id}"
        many = base
    routes = [
        rest.Route("PUT", one, put),
        rest.Route("HEAD", one, check),
        rest.Route("GET", one, check),
        rest.Route("DELETE", one, revoke),
    ]
    # Keystone lists inherited grants only on domains.
    if not (inherited and target_type == "project"):
        routes.append(rest.Route("GET", many, list_))
    return routes


def _assignment_not_found(role_id: str, grant: Grant) -> rest.NotFound:
    return rest.NotFound(
        f"Could not find role assignment with role: {role_id}, user or group: "
        f"{grant.actor_id}, project, domain, or system: {grant.target_id}."
    )


ROUTES = [
    route
    for actor in ("user", "group")
    for target, inherited in (
        ("project", False),
        ("domain", False),
        ("system", False),
        ("domain", True),
        ("project", True),
    )
    for route in _handlers(actor, target, inherited)
]
