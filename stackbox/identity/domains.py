"""Domains: stored as projects with ``is_domain``, served through their own API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest, validation
from stackbox.identity import errors, models, projects, resources, runtime

_PROPERTIES: dict[str, Any] = {
    "name": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"[\S]+"},
    "description": {"type": ["string", "null"]},
    "enabled": {"type": "boolean"},
    "tags": projects.TAGS,
    "options": projects._OPTIONS,
    "explicit_domain_id": {"type": "string", "minLength": 1, "maxLength": 64},
}
CREATE_SCHEMA = validation.creating(_PROPERTIES, "name")
UPDATE_SCHEMA = validation.updating(_PROPERTIES)


def render(session: Session, domain: models.Project) -> dict[str, Any]:
    body: dict[str, Any] = dict(domain.extra)
    body.update(
        {
            "id": domain.id,
            "name": domain.name,
            "description": domain.description or "",
            "enabled": domain.enabled,
            "tags": projects.tags_of(session, domain.id),
            "options": dict(domain.options),
            "links": resources.self_link(f"/v3/domains/{domain.id}"),
        }
    )
    return body


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    ref = resources.body_of(request, "domain", CREATE_SCHEMA)
    resources.enforce(request, "identity:create_domain", {"domain": ref})
    ref = dict(ref)
    explicit = ref.pop("explicit_domain_id", None)
    ref["is_domain"] = True
    if explicit:
        if session.get(models.Project, explicit) is not None:
            raise errors.conflict("domain", f"Duplicate ID, {explicit}")
        ref["id"] = explicit
    domain = projects.create_project_row(session, ref, "default")
    return rest.ApiResponse(201, {"domain": render(session, domain)})


def list_domains(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    resources.enforce(request, "identity:list_domains", {"domain": {"id": None}})
    query = (
        select(models.Project)
        .where(models.Project.is_domain.is_(True))
        .order_by(models.Project.name)
    )
    rows = resources.filter_by_name(request, session.scalars(query), lambda d: d.name)
    enabled = resources.query_bool(request, "enabled")
    if enabled is not None:
        rows = [d for d in rows if d.enabled == enabled]
    rendered = [render(session, d) for d in rows]
    return resources.limited(rows, "domains", request, rendered)


def _domain(request: rest.ApiRequest, session: Session, action: str) -> models.Project:
    domain_id = request.path_params["domain_id"]
    resources.enforce(request, action, {"domain": {"id": domain_id}})
    return resources.get_domain(session, domain_id)


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    domain = _domain(request, session, "identity:get_domain")
    return {"domain": render(session, domain)}


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ref = resources.body_of(request, "domain", UPDATE_SCHEMA)
    domain = _domain(request, session, "identity:update_domain")
    ref = {k: v for k, v in ref.items() if k != "explicit_domain_id"}
    projects.update_row(session, domain, ref, "domain")
    return {"domain": render(session, domain)}


def delete(request: rest.ApiRequest, session: Session) -> None:
    domain = _domain(request, session, "identity:delete_domain")
    delete_domain_row(session, domain)


def delete_domain_row(session: Session, domain: models.Project) -> None:
    if domain.enabled:
        raise rest.Forbidden("Cannot delete a domain that is enabled, please disable it first.")
    if domain.options.get("immutable"):
        raise rest.Forbidden(f"Cannot delete immutable domain: {domain.id}.")
    # Leaves first, so every project is deleted after its children.
    members = list(
        session.scalars(
            select(models.Project).where(
                models.Project.domain_id == domain.id, models.Project.is_domain.is_(False)
            )
        )
    )
    by_depth = sorted(members, key=lambda p: -projects.depth(session, p))
    for project in by_depth:
        session.query(models.Assignment).filter(
            models.Assignment.target_type == "project", models.Assignment.target_id == project.id
        ).delete()
        session.delete(project)
        session.flush()
    for user in session.scalars(select(models.User).where(models.User.domain_id == domain.id)):
        session.query(models.Assignment).filter(
            models.Assignment.actor_type == "user", models.Assignment.actor_id == user.id
        ).delete()
        session.delete(user)
    for group in session.scalars(select(models.Group).where(models.Group.domain_id == domain.id)):
        session.query(models.Assignment).filter(
            models.Assignment.actor_type == "group", models.Assignment.actor_id == group.id
        ).delete()
        session.delete(group)
    for role in session.scalars(select(models.Role).where(models.Role.domain_id == domain.id)):
        session.delete(role)
    session.query(models.Assignment).filter(
        models.Assignment.target_type == "domain", models.Assignment.target_id == domain.id
    ).delete()
    session.delete(domain)
    runtime.changed(session)


ROUTES = [
    rest.Route("POST", "/v3/domains", create),
    rest.Route("GET", "/v3/domains", list_domains),
    rest.Route("GET", "/v3/domains/{domain_id}", show),
    rest.Route("PATCH", "/v3/domains/{domain_id}", update),
    rest.Route("DELETE", "/v3/domains/{domain_id}", delete),
]
