"""Groups and their members."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stackbox import rest, validation
from stackbox.identity import errors, models, resources, runtime, users

_PROPERTIES: dict[str, Any] = {
    "name": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"[\S]+"},
    "domain_id": {"type": "string", "minLength": 1, "maxLength": 64},
    "description": {"type": ["string", "null"]},
}
CREATE_SCHEMA = validation.creating(_PROPERTIES, "name")
UPDATE_SCHEMA = validation.updating(_PROPERTIES)


def render(group: models.Group) -> dict[str, Any]:
    body: dict[str, Any] = dict(group.extra)
    body.update(
        {
            "id": group.id,
            "name": group.name,
            "domain_id": group.domain_id,
            "description": group.description or "",
            "links": resources.self_link(f"/v3/groups/{group.id}"),
        }
    )
    return body


def target(group: models.Group) -> dict[str, Any]:
    return {"group": {"id": group.id, "domain_id": group.domain_id, "name": group.name}}


def _group(request: rest.ApiRequest, session: Session, action: str, **extra: Any) -> models.Group:
    group_id = request.path_params["group_id"]
    group = session.get(models.Group, group_id)
    found = target(group) if group else {"group": {"id": group_id}}
    resources.enforce(request, action, {**found, **extra})
    if group is None:
        raise errors.not_found("group", group_id)
    return group


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    ref = resources.body_of(request, "group", CREATE_SCHEMA)
    domain_id = ref.get("domain_id") or request.context.domain_id or "default"
    resources.enforce(request, "identity:create_group", {"group": {**ref, "domain_id": domain_id}})
    resources.get_domain(session, domain_id)
    extra = {
        k: v for k, v in ref.items() if k not in ("name", "domain_id", "description", "id", "links")
    }
    group = models.Group(
        id=resources.new_id(),
        name=ref["name"],
        domain_id=domain_id,
        description=ref.get("description"),
        extra=extra,
    )
    session.add(group)
    try:
        session.flush()
    except IntegrityError:
        raise errors.duplicate("group", ref["name"], domain_id) from None
    runtime.changed(session)
    return rest.ApiResponse(201, {"group": render(group)})


def list_groups(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    domain_id = request.arg("domain_id")
    resources.enforce(request, "identity:list_groups", {"group": {"domain_id": domain_id}})
    query = select(models.Group).order_by(models.Group.name)
    if domain_id is None and request.context.domain_id:
        domain_id = request.context.domain_id
    if domain_id is not None:
        query = query.where(models.Group.domain_id == domain_id)
    rows = resources.filter_by_name(request, session.scalars(query), lambda g: g.name)
    return resources.limited(rows, "groups", request, [render(g) for g in rows])


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    return {"group": render(_group(request, session, "identity:get_group"))}


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ref = resources.body_of(request, "group", UPDATE_SCHEMA)
    group = _group(request, session, "identity:update_group")
    if "domain_id" in ref and ref["domain_id"] != group.domain_id:
        raise rest.BadRequest("Cannot change Domain ID")
    extra = dict(group.extra)
    for key, value in ref.items():
        if key in ("name", "description"):
            setattr(group, key, value)
        elif key not in ("domain_id", "id", "links"):
            extra[key] = value
    group.extra = extra
    try:
        session.flush()
    except IntegrityError:
        raise errors.duplicate("group", ref.get("name", group.name), group.domain_id) from None
    runtime.changed(session)
    return {"group": render(group)}


def delete(request: rest.ApiRequest, session: Session) -> None:
    group = _group(request, session, "identity:delete_group")
    session.query(models.Assignment).filter(
        models.Assignment.actor_type == "group", models.Assignment.actor_id == group.id
    ).delete()
    session.delete(group)
    runtime.changed(session)


def list_members(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    group = _group(request, session, "identity:list_users_in_group")
    rows = list(
        session.scalars(
            select(models.User)
            .join(models.GroupMembership, models.GroupMembership.user_id == models.User.id)
            .where(models.GroupMembership.group_id == group.id)
            .order_by(models.User.name)
        )
    )
    rows = resources.filter_by_name(request, rows, lambda u: u.name)
    rendered = users.render_many(session, rows)
    expires_filter = request.arg("password_expires_at")
    if expires_filter:
        rendered = users.filter_password_expiry(rendered, expires_filter)
    return {"users": rendered, "links": resources.collection_links(request)}


def _member(
    request: rest.ApiRequest, session: Session, action: str
) -> tuple[models.Group, models.User]:
    group_id = request.path_params["group_id"]
    user_id = request.path_params["user_id"]
    group = session.get(models.Group, group_id)
    user = session.get(models.User, user_id)
    found: dict[str, Any] = {}
    found.update(target(group) if group else {"group": {"id": group_id}})
    found.update(users.target(user) if user else {"user": {"id": user_id}})
    resources.enforce(request, action, found)
    if group is None:
        raise errors.not_found("group", group_id)
    if user is None:
        raise errors.not_found("user", user_id)
    return group, user


def add_member(request: rest.ApiRequest, session: Session) -> None:
    group, user = _member(request, session, "identity:add_user_to_group")
    if session.get(models.GroupMembership, (user.id, group.id)) is None:
        session.add(models.GroupMembership(user_id=user.id, group_id=group.id))
        runtime.changed(session)


def check_member(request: rest.ApiRequest, session: Session) -> None:
    group, user = _member(request, session, "identity:check_user_in_group")
    if session.get(models.GroupMembership, (user.id, group.id)) is None:
        raise rest.NotFound(f"User '{user.id}' not found in group '{group.id}'")


def remove_member(request: rest.ApiRequest, session: Session) -> None:
    group, user = _member(request, session, "identity:remove_user_from_group")
    row = session.get(models.GroupMembership, (user.id, group.id))
    if row is None:
        raise rest.NotFound(f"User '{user.id}' not found in group '{group.id}'")
    session.delete(row)
    runtime.changed(session)


ROUTES = [
    rest.Route("POST", "/v3/groups", create),
    rest.Route("GET", "/v3/groups", list_groups),
    rest.Route("GET", "/v3/groups/{group_id}", show),
    rest.Route("PATCH", "/v3/groups/{group_id}", update),
    rest.Route("DELETE", "/v3/groups/{group_id}", delete),
    rest.Route("GET", "/v3/groups/{group_id}/users", list_members),
    rest.Route("PUT", "/v3/groups/{group_id}/users/{user_id}", add_member),
    rest.Route("HEAD", "/v3/groups/{group_id}/users/{user_id}", check_member),
    rest.Route("GET", "/v3/groups/{group_id}/users/{user_id}", check_member),
    rest.Route("DELETE", "/v3/groups/{group_id}/users/{user_id}", remove_member),
]
