"""Projects: the hierarchy (``parent_id``), tags, and projects acting as domains.

As in Keystone, a top-level project's ``parent_id`` is its domain's id, and a
project created with ``is_domain`` is a domain.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stackbox import policy, rest, validation
from stackbox.identity import (
    assignments,
    errors,
    models,
    resources,
    revocations,
    runtime,
    trusts,
)

MAX_DEPTH = 5
MAX_TAGS = 80

TAG = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[^,/]*$"}
TAGS = {"type": "array", "items": TAG, "maxItems": MAX_TAGS, "uniqueItems": True}
_NAME = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"[\S]+"}
_OPTIONS = {
    "type": "object",
    "properties": {"immutable": {"type": ["boolean", "null"]}},
    "additionalProperties": False,
}
_PROPERTIES: dict[str, Any] = {
    "name": _NAME,
    "description": {"type": ["string", "null"]},
    "domain_id": {"type": ["string", "null"], "maxLength": 64},
    "parent_id": {"type": ["string", "null"], "maxLength": 64},
    "enabled": {"type": "boolean"},
    "is_domain": {"type": "boolean"},
    "tags": TAGS,
    "options": _OPTIONS,
}
CREATE_SCHEMA = validation.creating(_PROPERTIES, "name")
UPDATE_SCHEMA = validation.updating(_PROPERTIES)
TAGS_BODY_SCHEMA = {
    "type": "object",
    "properties": {"tags": TAGS},
    "required": ["tags"],
    "additionalProperties": False,
}

_COLUMNS = ("name", "description", "domain_id", "parent_id", "enabled", "is_domain", "options")


def tags_of(session: Session, project_id: str) -> list[str]:
    return sorted(
        session.scalars(
            select(models.ProjectTag.name).where(models.ProjectTag.project_id == project_id)
        )
    )


def render(session: Session, project: models.Project) -> dict[str, Any]:
    body: dict[str, Any] = dict(project.extra)
    body.update(
        {
            "id": project.id,
            "name": project.name,
            "domain_id": None if project.is_domain else project.domain_id,
            "description": project.description or "",
            "enabled": project.enabled,
            "parent_id": project.parent_id,
            "is_domain": project.is_domain,
            "tags": tags_of(session, project.id),
            "options": dict(project.options),
            "links": resources.self_link(f"/v3/projects/{project.id}"),
        }
    )
    return body


def target(project: models.Project) -> dict[str, Any]:
    return {"project": {"id": project.id, "domain_id": project.domain_id, "name": project.name}}


def _set_tags(session: Session, project_id: str, tags: list[str]) -> None:
    session.query(models.ProjectTag).filter(models.ProjectTag.project_id == project_id).delete()
    for tag in tags:
        session.add(models.ProjectTag(project_id=project_id, name=tag))


def depth(session: Session, project: models.Project) -> int:
    return 1 + len(assignments.ancestors(session, project))


def children(session: Session, project_id: str) -> list[models.Project]:
    return list(
        session.scalars(
            select(models.Project).where(
                models.Project.parent_id == project_id, models.Project.is_domain.is_(False)
            )
        )
    )


def subtree(session: Session, project_id: str) -> list[models.Project]:
    """Every project below ``project_id``, breadth first."""
    found: list[models.Project] = []
    frontier = [project_id]
    while frontier:
        level = list(
            session.scalars(
                select(models.Project).where(
                    models.Project.parent_id.in_(frontier), models.Project.is_domain.is_(False)
                )
            )
        )
        found.extend(level)
        frontier = [p.id for p in level]
    return found


def create_project_row(
    session: Session, ref: dict[str, Any], default_domain: str
) -> models.Project:
    """Validate and insert a project (or a domain when ``is_domain``); no policy check."""
    is_domain = bool(ref.get("is_domain", False))
    parent_id = ref.get("parent_id")
    if is_domain:
        if parent_id:
            raise rest.BadRequest("Invalid input for field 'parent_id': a domain has no parent")
        if ref.get("domain_id"):
            raise rest.BadRequest("Invalid input for field 'domain_id': a domain has no domain")
        domain_id = models.ROOT_DOMAIN
    else:
        requested: str | None = ref.get("domain_id")
        if parent_id:
            parent = session.get(models.Project, parent_id)
            if parent is None:
                raise errors.not_found("project", parent_id)
            parent_domain = parent.id if parent.is_domain else parent.domain_id
            if requested and requested != parent_domain:
                raise rest.BadRequest(
                    "Cannot create project, the parent "
                    f"({parent_id}) is in a different domain ({parent_domain})."
                )
            requested = parent_domain
            if not parent.is_domain and depth(session, parent) >= MAX_DEPTH:
                raise rest.Forbidden(f"Max hierarchy depth reached for {parent_id} branch.")
        domain_id = requested or default_domain
        domain = session.get(models.Project, domain_id)
        if domain is None or not domain.is_domain:
            raise errors.not_found("domain", domain_id)
        parent_id = parent_id or domain_id
    columns = {k: ref[k] for k in _COLUMNS if k in ref}
    extra = {k: v for k, v in ref.items() if k not in _COLUMNS and k not in ("tags", "id", "links")}
    columns.update(domain_id=domain_id, parent_id=parent_id, is_domain=is_domain)
    columns["options"] = {k: v for k, v in (ref.get("options") or {}).items() if v is not None}
    project = models.Project(id=ref.get("id") or resources.new_id(), **columns, extra=extra)
    project.description = project.description or ""
    session.add(project)
    try:
        session.flush()
    except IntegrityError:
        kind = "domain" if is_domain else "project"
        where = None if is_domain else domain_id
        raise errors.duplicate(kind, ref["name"], where) from None
    _set_tags(session, project.id, ref.get("tags") or [])
    runtime.changed(session)
    return project


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    ref = resources.body_of(request, "project", CREATE_SCHEMA)
    default_domain = request.context.domain_id or "default"
    domain_for_policy = ref.get("domain_id") or default_domain
    resources.enforce(
        request, "identity:create_project", {"project": {**ref, "domain_id": domain_for_policy}}
    )
    project = create_project_row(session, ref, default_domain)
    return rest.ApiResponse(201, {"project": render(session, project)})


def apply_filters(request: rest.ApiRequest, rows: list[models.Project]) -> list[models.Project]:
    result = resources.filter_by_name(request, rows, lambda p: p.name)
    domain_id = request.arg("domain_id")
    if domain_id is not None:
        result = [p for p in result if p.domain_id == domain_id and not p.is_domain]
    enabled = resources.query_bool(request, "enabled")
    if enabled is not None:
        result = [p for p in result if p.enabled == enabled]
    parent_id = request.arg("parent_id")
    if parent_id is not None:
        result = [p for p in result if p.parent_id == parent_id]
    return result


def _tag_filters(
    session: Session, request: rest.ApiRequest, rows: list[models.Project]
) -> list[models.Project]:
    wanted = {k: request.arg(k) for k in ("tags", "tags-any", "not-tags", "not-tags-any")}
    if not any(wanted.values()):
        return rows
    result = []
    for project in rows:
        have = set(tags_of(session, project.id))
        ok = True
        if wanted["tags"]:
            ok &= set(wanted["tags"].split(",")) <= have
        if wanted["tags-any"]:
            ok &= bool(set(wanted["tags-any"].split(",")) & have)
        if wanted["not-tags"]:
            ok &= not set(wanted["not-tags"].split(",")) <= have
        if wanted["not-tags-any"]:
            ok &= not set(wanted["not-tags-any"].split(",")) & have
        if ok:
            result.append(project)
    return result


def list_projects(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    domain_id = request.arg("domain_id")
    resources.enforce(request, "identity:list_projects", {"domain_id": domain_id})
    is_domain = resources.query_bool(request, "is_domain")
    query = select(models.Project).order_by(models.Project.name)
    query = query.where(models.Project.is_domain.is_(bool(is_domain)))
    if domain_id is None and request.context.domain_id and not is_domain:
        query = query.where(models.Project.domain_id == request.context.domain_id)
    rows = apply_filters(request, list(session.scalars(query)))
    rows = _tag_filters(session, request, rows)
    rendered = [render(session, p) for p in rows]
    return resources.limited(rows, "projects", request, rendered)


def _project_or_404(request: rest.ApiRequest, session: Session, action: str) -> models.Project:
    project_id = request.path_params["project_id"]
    project = session.get(models.Project, project_id)
    resources.enforce(
        request, action, target(project) if project else {"project": {"id": project_id}}
    )
    if project is None:
        raise errors.not_found("project", project_id)
    return project


def _ref(project: models.Project, session: Session) -> dict[str, Any]:
    return {"project": render(session, project)}


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    project = _project_or_404(request, session, "identity:get_project")
    body = render(session, project)
    if resources.query_bool(request, "parents_as_list"):
        body["parents"] = [
            _ref(p, session)
            for p in assignments.ancestors(session, project)
            if _visible(request, session, p)
        ]
    elif resources.query_bool(request, "parents_as_ids"):
        body["parents"] = _ids_tree_up(session, project)
    if resources.query_bool(request, "subtree_as_list"):
        body["subtree"] = [
            _ref(p, session) for p in subtree(session, project.id) if _visible(request, session, p)
        ]
    elif resources.query_bool(request, "subtree_as_ids"):
        body["subtree"] = _ids_tree_down(session, project.id)
    return {"project": body}


def _visible(request: rest.ApiRequest, session: Session, project: models.Project) -> bool:
    """Whether the caller may see this project in a parents/subtree list (Keystone's rule)."""
    flat = {"target.project.id": project.id, "target.project.domain_id": project.domain_id}
    if policy.allowed(request.context, "identity:get_project", flat, service="identity"):
        return True
    user_id = request.context.user_id
    return bool(user_id and assignments.direct_role_ids(session, user_id, project_id=project.id))


def _ids_tree_up(session: Session, project: models.Project) -> dict[str, Any] | None:
    parents = assignments.ancestors(session, project)
    tree: dict[str, Any] | None = None
    for parent in reversed(parents):
        tree = {parent.id: tree}
    return tree


def _ids_tree_down(session: Session, project_id: str) -> dict[str, Any] | None:
    kids = children(session, project_id)
    if not kids:
        return None
    return {kid.id: _ids_tree_down(session, kid.id) for kid in kids}


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ref = resources.body_of(request, "project", UPDATE_SCHEMA)
    project = _project_or_404(request, session, "identity:update_project")
    update_row(session, project, ref, "project")
    return {"project": render(session, project)}


def update_row(session: Session, project: models.Project, ref: dict[str, Any], kind: str) -> None:
    fixed = {
        "domain_id": None if project.is_domain else project.domain_id,
        "parent_id": project.parent_id,
        "is_domain": project.is_domain,
    }
    for field, current in fixed.items():
        if field in ref and ref[field] != current:
            raise rest.BadRequest(f"Update of `{field}` is not allowed.")
    if project.options.get("immutable") and not (
        set(ref) == {"options"} or ref.get("options", {}).get("immutable") is False
    ):
        raise rest.Forbidden(f"Cannot modify immutable {kind}: {project.id}.")
    was_enabled = project.enabled
    if ref.get("enabled") is False and project.id == "default" and kind == "domain":
        raise rest.Forbidden("The default domain cannot be disabled.")
    if ref.get("enabled") is True and not project.is_domain:
        for parent in assignments.ancestors(session, project):
            if not parent.enabled:
                raise rest.Forbidden(
                    f"Cannot enable project {project.id} since it has disabled parents"
                )
    if (
        ref.get("enabled") is False
        and not project.is_domain
        and any(child.enabled for child in subtree(session, project.id))
    ):
        raise rest.Forbidden(
            f"Cannot disable project {project.id} since its subtree contains enabled projects."
        )
    extra = dict(project.extra)
    for key, value in ref.items():
        if key in ("domain_id", "parent_id", "is_domain", "id", "links"):
            continue
        if key == "tags":
            _set_tags(session, project.id, value)
        elif key == "options":
            options = dict(project.options)
            for name, option in value.items():
                if option is None:
                    options.pop(name, None)
                else:
                    options[name] = option
            project.options = options
        elif key in _COLUMNS:
            setattr(project, key, value if key != "description" else (value or ""))
        else:
            extra[key] = value
    project.extra = extra
    try:
        session.flush()
    except IntegrityError:
        where = None if project.is_domain else project.domain_id
        raise errors.duplicate(kind, ref.get("name", project.name), where) from None
    if was_enabled and not project.enabled:
        if project.is_domain:
            revocations.revoke(session, domain_id=project.id)
        else:
            revocations.revoke(session, project_id=project.id)
    runtime.changed(session)


def delete(request: rest.ApiRequest, session: Session) -> None:
    project = _project_or_404(request, session, "identity:delete_project")
    if project.is_domain:
        # Imported here: domains builds its schemas from this module's at import time.
        from stackbox.identity import domains

        domains.delete_domain_row(session, project)
        return
    delete_row(session, project)


def delete_row(session: Session, project: models.Project) -> None:
    if project.options.get("immutable"):
        raise rest.Forbidden(f"Cannot delete immutable project: {project.id}.")
    if children(session, project.id):
        raise rest.Forbidden(
            f"Cannot delete the project {project.id} since it is not a leaf in the "
            "hierarchy. Use the cascade option if you want to delete a whole subtree."
        )
    session.query(models.Assignment).filter(
        models.Assignment.target_type == "project", models.Assignment.target_id == project.id
    ).delete()
    session.query(models.ProjectEndpoint).filter(
        models.ProjectEndpoint.project_id == project.id
    ).delete()
    session.query(models.ProjectEndpointGroup).filter(
        models.ProjectEndpointGroup.project_id == project.id
    ).delete()
    # Keystone drops the project's credentials (EC2 keys are project-bound) with it.
    session.query(models.Credential).filter(models.Credential.project_id == project.id).delete()
    session.query(models.ApplicationCredential).filter(
        models.ApplicationCredential.project_id == project.id
    ).delete()
    trusts.delete_for_project(session, project.id)
    session.delete(project)
    revocations.revoke(session, project_id=project.id)
    runtime.changed(session)


# Tags sub-resource.


def list_tags(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    project = _project_or_404(request, session, "identity:list_project_tags")
    return {"tags": tags_of(session, project.id)}


def check_tag(request: rest.ApiRequest, session: Session) -> None:
    project = _project_or_404(request, session, "identity:get_project_tag")
    tag = request.path_params["tag"]
    if tag not in tags_of(session, project.id):
        raise errors.not_found("project tag", tag)


def replace_tags(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    project = _project_or_404(request, session, "identity:update_project_tags")
    if not isinstance(request.body, dict):
        raise rest.BadRequest("Expecting to find tags in request body.")
    validation.check(TAGS_BODY_SCHEMA, request.body)
    _set_tags(session, project.id, request.body["tags"])
    runtime.changed(session)
    session.flush()
    return {
        "tags": tags_of(session, project.id),
        "links": resources.self_link(f"/v3/projects/{project.id}/tags"),
    }


def add_tag(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    project = _project_or_404(request, session, "identity:create_project_tag")
    tag = request.path_params["tag"]
    validation.check(TAG, tag)
    current = tags_of(session, project.id)
    if tag not in current:
        if len(current) >= MAX_TAGS:
            raise rest.BadRequest(f"A project may have at most {MAX_TAGS} tags.")
        session.add(models.ProjectTag(project_id=project.id, name=tag))
        runtime.changed(session)
    location = resources.url(f"/v3/projects/{project.id}/tags/{tag}")
    return rest.ApiResponse(201, None, headers={"Location": location})


def delete_tags(request: rest.ApiRequest, session: Session) -> None:
    project = _project_or_404(request, session, "identity:delete_project_tags")
    _set_tags(session, project.id, [])
    runtime.changed(session)


def delete_tag(request: rest.ApiRequest, session: Session) -> None:
    project = _project_or_404(request, session, "identity:delete_project_tag")
    tag = request.path_params["tag"]
    row = session.get(models.ProjectTag, (project.id, tag))
    if row is None:
        raise errors.not_found("project tag", tag)
    session.delete(row)
    runtime.changed(session)


ROUTES = [
    rest.Route("POST", "/v3/projects", create),
    rest.Route("GET", "/v3/projects", list_projects),
    rest.Route("GET", "/v3/projects/{project_id}", show),
    rest.Route("PATCH", "/v3/projects/{project_id}", update),
    rest.Route("DELETE", "/v3/projects/{project_id}", delete),
    rest.Route("GET", "/v3/projects/{project_id}/tags", list_tags),
    rest.Route("PUT", "/v3/projects/{project_id}/tags", replace_tags),
    rest.Route("DELETE", "/v3/projects/{project_id}/tags", delete_tags),
    rest.Route("GET", "/v3/projects/{project_id}/tags/{tag}", check_tag),
    rest.Route("PUT", "/v3/projects/{project_id}/tags/{tag}", add_tag),
    rest.Route("DELETE", "/v3/projects/{project_id}/tags/{tag}", delete_tag),
]
