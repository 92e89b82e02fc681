"""OS-EP-FILTER: endpoint groups and which endpoints a project's catalog is limited to.

A project is tied to endpoints directly (project-endpoint rows) or through
endpoint groups, whose filters select endpoints by ``interface``, ``service_id``
and ``region_id``. In Keystone a project with any such tie sees only those
endpoints in its token catalog and a project without one sees them all;
``project_endpoint_ids`` gives the catalog builder that limit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stackbox import rest, validation
from stackbox.identity import catalog_admin, errors, models, projects, resources, runtime

FILTER_KEYS = ("service_id", "region_id", "interface")
_PREFIX = "/v3/OS-EP-FILTER"

_GROUP_PROPERTIES: dict[str, Any] = {
    "name": validation.NAME,
    "description": {"type": ["string", "null"]},
    "filters": {
        # null is read as "unchanged" on update: `openstack endpoint group set` sends
        # it whenever --filters is absent (Keystone itself answers 400).
        "type": ["object", "null"],
        "properties": {
            "interface": {"type": "string", "enum": catalog_admin.INTERFACES},
            "service_id": {"type": "string"},
            "region_id": {"type": ["string", "null"]},
            "enabled": {"type": "boolean"},
        },
    },
}
CREATE_SCHEMA = validation.creating(_GROUP_PROPERTIES, "name", "filters", extra=False)
UPDATE_SCHEMA = validation.updating(_GROUP_PROPERTIES, extra=False)
LIST_QUERY_SCHEMA = {
    "type": "object",
    "properties": {"name": validation.NAME},
    "additionalProperties": False,
}


def render_group(group: models.EndpointGroup) -> dict[str, Any]:
    return {
        "id": group.id,
        "name": group.name,
        "description": group.description,
        "filters": dict(group.filters),
        "links": resources.self_link(f"{_PREFIX}/endpoint_groups/{group.id}"),
    }


def get_group(session: Session, group_id: str) -> models.EndpointGroup:
    group = session.get(models.EndpointGroup, group_id)
    if group is None:
        raise errors.not_found("Endpoint Group", group_id)
    return group


def get_project(session: Session, project_id: str) -> models.Project:
    # Keystone's lookup here accepts any project row, domains included.
    return resources.get_or_404(session, models.Project, project_id, "project")


def _require_valid_filters(filters: dict[str, Any]) -> None:
    if any(key not in FILTER_KEYS for key in filters):
        raise catalog_admin.expecting(" or ".join(FILTER_KEYS), "endpoint_group")


def matching_endpoints(session: Session, group: models.EndpointGroup) -> list[models.Endpoint]:
    """Every endpoint (enabled or not) whose attributes equal all of the group's filters."""
    filters = group.filters or {}
    return [
        endpoint
        for endpoint in session.scalars(select(models.Endpoint))
        if all(getattr(endpoint, key, None) == value for key, value in filters.items())
    ]


def _groups_of_project(session: Session, project_id: str) -> list[models.EndpointGroup]:
    return list(
        session.scalars(
            select(models.EndpointGroup)
            .join(
                models.ProjectEndpointGroup,
                models.ProjectEndpointGroup.endpoint_group_id == models.EndpointGroup.id,
            )
            .where(models.ProjectEndpointGroup.project_id == project_id)
        )
    )


def endpoints_for_project(session: Session, project_id: str) -> list[models.Endpoint]:
    """The endpoints tied to a project, directly or through its endpoint groups."""
    found: dict[str, models.Endpoint] = {}
    direct = session.scalars(
        select(models.Endpoint)
        .join(models.ProjectEndpoint, models.ProjectEndpoint.endpoint_id == models.Endpoint.id)
        .where(models.ProjectEndpoint.project_id == project_id)
    )
    for endpoint in direct:
        found[endpoint.id] = endpoint
    for group in _groups_of_project(session, project_id):
        for endpoint in matching_endpoints(session, group):
            found.setdefault(endpoint.id, endpoint)
    return list(found.values())


def project_endpoint_ids(session: Session, project_id: str | None) -> set[str] | None:
    """Endpoint ids a project's catalog is limited to; None when it is not limited.

    This is the filter Keystone's SQL catalog applies to project-scoped tokens.
    """
    if project_id is None:
        return None
    ids = {e.id for e in endpoints_for_project(session, project_id)}
    return ids or None


def _render_projects(session: Session, project_ids: list[str]) -> list[dict[str, Any]]:
    rows = [session.get(models.Project, pid) for pid in project_ids]
    # An association may outlive its project; such rows are skipped.
    return [projects.render(session, p) for p in rows if p is not None]


# Endpoint groups.


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    ref = resources.body_of(request, "endpoint_group", CREATE_SCHEMA)
    resources.enforce(request, "identity:create_endpoint_group")
    if not ref.get("filters"):
        raise rest.BadRequest("filters field is required and cannot be empty")
    _require_valid_filters(ref["filters"])
    group = models.EndpointGroup(
        id=resources.new_id(),
        name=ref["name"],
        description=ref.get("description"),
        filters=dict(ref["filters"]),
    )
    session.add(group)
    session.flush()
    runtime.changed(session)
    return rest.ApiResponse(201, {"endpoint_group": render_group(group)})


def list_groups(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    catalog_admin.check_query(request, LIST_QUERY_SCHEMA)
    resources.enforce(request, "identity:list_endpoint_groups")
    query = select(models.EndpointGroup).order_by(models.EndpointGroup.name)
    name = request.arg("name")
    if name is not None:
        query = query.where(models.EndpointGroup.name == name)
    rendered = [render_group(g) for g in session.scalars(query)]
    return resources.limited(rendered, "endpoint_groups", request, rendered)


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    resources.enforce(request, "identity:get_endpoint_group")
    group = get_group(session, request.path_params["endpoint_group_id"])
    return {"endpoint_group": render_group(group)}


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ref = resources.body_of(request, "endpoint_group", UPDATE_SCHEMA)
    resources.enforce(request, "identity:update_endpoint_group")
    if ref.get("filters") is not None:
        _require_valid_filters(ref["filters"])
    group = get_group(session, request.path_params["endpoint_group_id"])
    if "name" in ref:
        group.name = ref["name"]
    if "description" in ref:
        group.description = ref["description"]
    if ref.get("filters") is not None:
        group.filters = dict(ref["filters"])
    session.flush()
    runtime.changed(session)
    return {"endpoint_group": render_group(group)}


def delete(request: rest.ApiRequest, session: Session) -> None:
    resources.enforce(request, "identity:delete_endpoint_group")
    group = get_group(session, request.path_params["endpoint_group_id"])
    session.query(models.ProjectEndpointGroup).filter(
        models.ProjectEndpointGroup.endpoint_group_id == group.id
    ).delete()
    session.delete(group)
    runtime.changed(session)


def endpoints_in_group(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    resources.enforce(request, "identity:list_endpoints_associated_with_endpoint_group")
    group = get_group(session, request.path_params["endpoint_group_id"])
    rendered = [catalog_admin.render_endpoint(e) for e in matching_endpoints(session, group)]
    return {"endpoints": rendered, "links": resources.collection_links(request)}


def projects_of_group(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    # Like Keystone, an unknown group simply has no projects (no 404).
    resources.enforce(request, "identity:list_projects_associated_with_endpoint_group")
    project_ids = session.scalars(
        select(models.ProjectEndpointGroup.project_id).where(
            models.ProjectEndpointGroup.endpoint_group_id
            == request.path_params["endpoint_group_id"]
        )
    ).all()
    return {
        "projects": _render_projects(session, list(project_ids)),
        "links": resources.collection_links(request),
    }


def groups_of_project(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    resources.enforce(request, "identity:list_endpoint_groups_for_project")
    project = get_project(session, request.path_params["project_id"])
    rendered = [render_group(g) for g in _groups_of_project(session, project.id)]
    return {"endpoint_groups": rendered, "links": resources.collection_links(request)}


# Endpoint group <-> project.


def _group_and_project(
    request: rest.ApiRequest, session: Session
) -> tuple[models.EndpointGroup, models.Project]:
    project = get_project(session, request.path_params["project_id"])
    group = get_group(session, request.path_params["endpoint_group_id"])
    return group, project


def _group_link(
    session: Session, group: models.EndpointGroup, project: models.Project
) -> models.ProjectEndpointGroup:
    link = session.get(models.ProjectEndpointGroup, (group.id, project.id))
    if link is None:
        raise rest.NotFound("Endpoint Group Project Association not found")
    return link


def show_group_project(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    resources.enforce(request, "identity:get_endpoint_group_in_project")
    group, project = _group_and_project(request, session)
    _group_link(session, group, project)
    path = f"{_PREFIX}/endpoint_groups/{group.id}/projects/{project.id}"
    return {
        "project_endpoint_group": {
            "endpoint_group_id": group.id,
            "project_id": project.id,
            "links": resources.self_link(path),
        }
    }


def add_group_project(request: rest.ApiRequest, session: Session) -> None:
    resources.enforce(request, "identity:add_endpoint_group_to_project")
    group, project = _group_and_project(request, session)
    if session.get(models.ProjectEndpointGroup, (group.id, project.id)) is not None:
        raise errors.conflict("project_endpoint_group", "Duplicate entry")
    session.add(models.ProjectEndpointGroup(endpoint_group_id=group.id, project_id=project.id))
    _flush_or_conflict(session, "project_endpoint_group")
    runtime.changed(session)


def remove_group_project(request: rest.ApiRequest, session: Session) -> None:
    resources.enforce(request, "identity:remove_endpoint_group_from_project")
    group, project = _group_and_project(request, session)
    session.delete(_group_link(session, group, project))
    runtime.changed(session)


# Endpoint <-> project.


def _endpoint_link(session: Session, endpoint_id: str, project_id: str) -> models.ProjectEndpoint:
    link = session.get(models.ProjectEndpoint, (endpoint_id, project_id))
    if link is None:
        raise rest.NotFound(f"Endpoint {endpoint_id} not found in project {project_id}")
    return link


def _flush_or_conflict(session: Session, kind: str) -> None:
    # Two concurrent PUTs of the same association: the loser gets Keystone's 409.
    try:
        session.flush()
    except IntegrityError:
        raise errors.conflict(kind, "Duplicate entry") from None


def check_endpoint_project(request: rest.ApiRequest, session: Session) -> None:
    resources.enforce(request, "identity:check_endpoint_in_project")
    endpoint = catalog_admin.get_endpoint(session, request.path_params["endpoint_id"])
    project = get_project(session, request.path_params["project_id"])
    _endpoint_link(session, endpoint.id, project.id)


def add_endpoint_project(request: rest.ApiRequest, session: Session) -> None:
    resources.enforce(request, "identity:add_endpoint_to_project")
    endpoint = catalog_admin.get_endpoint(session, request.path_params["endpoint_id"])
    project = get_project(session, request.path_params["project_id"])
    if session.get(models.ProjectEndpoint, (endpoint.id, project.id)) is not None:
        raise errors.conflict("project_endpoint", "Duplicate entry")
    session.add(models.ProjectEndpoint(endpoint_id=endpoint.id, project_id=project.id))
    _flush_or_conflict(session, "project_endpoint")
    runtime.changed(session)


def remove_endpoint_project(request: rest.ApiRequest, session: Session) -> None:
    # Keystone looks only at the association here, not at the endpoint or project.
    resources.enforce(request, "identity:remove_endpoint_from_project")
    params = request.path_params
    session.delete(_endpoint_link(session, params["endpoint_id"], params["project_id"]))
    runtime.changed(session)


def projects_of_endpoint(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    resources.enforce(request, "identity:list_projects_for_endpoint")
    endpoint = catalog_admin.get_endpoint(session, request.path_params["endpoint_id"])
    project_ids = session.scalars(
        select(models.ProjectEndpoint.project_id).where(
            models.ProjectEndpoint.endpoint_id == endpoint.id
        )
    ).all()
    return {
        "projects": _render_projects(session, list(project_ids)),
        "links": resources.collection_links(request),
    }


def endpoints_of_project(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    resources.enforce(request, "identity:list_endpoints_for_project")
    project = get_project(session, request.path_params["project_id"])
    rendered = [
        catalog_admin.render_endpoint(e) for e in endpoints_for_project(session, project.id)
    ]
    return {"endpoints": rendered, "links": resources.collection_links(request)}


_GROUP = f"{_PREFIX}/endpoint_groups/{{endpoint_group_id}}"
_PROJECT_ENDPOINT = f"{_PREFIX}/projects/{{project_id}}/endpoints/{{endpoint_id}}"

ROUTES = [
    rest.Route("POST", f"{_PREFIX}/endpoint_groups", create),
    rest.Route("GET", f"{_PREFIX}/endpoint_groups", list_groups),
    rest.Route("GET", _GROUP, show),
    rest.Route("PATCH", _GROUP, update),
    rest.Route("DELETE", _GROUP, delete),
    rest.Route("GET", f"{_GROUP}/endpoints", endpoints_in_group),
    rest.Route("GET", f"{_GROUP}/projects", projects_of_group),
    rest.Route("GET", f"{_GROUP}/projects/{{project_id}}", show_group_project),
    rest.Route("PUT", f"{_GROUP}/projects/{{project_id}}", add_group_project),
    rest.Route("DELETE", f"{_GROUP}/projects/{{project_id}}", remove_group_project),
    rest.Route("GET", f"{_PREFIX}/projects/{{project_id}}/endpoint_groups", groups_of_project),
    rest.Route("GET", f"{_PREFIX}/projects/{{project_id}}/endpoints", endpoints_of_project),
    rest.Route("GET", _PROJECT_ENDPOINT, check_endpoint_project),
    rest.Route("PUT", _PROJECT_ENDPOINT, add_endpoint_project),
    rest.Route("DELETE", _PROJECT_ENDPOINT, remove_endpoint_project),
    rest.Route("GET", f"{_PREFIX}/endpoints/{{endpoint_id}}/projects", projects_of_endpoint),
]
