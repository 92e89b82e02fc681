"""/servers/{id}/tags (2.26+): list, replace all, delete all; one tag: check (204/404),
add (201 with Location, 204 if present), delete. At most 50 tags of at most 60
characters without "," or "/"; changes need an active, paused, suspended or stopped
server (409 otherwise)."""

from __future__ import annotations

from typing import Any

import jsonschema
from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import common, errors, microversions, models, server_schema, states

POLICY = "os_compute_api:os-server-tags:"
WRITABLE = (states.ACTIVE, states.PAUSED, states.SUSPENDED, states.STOPPED)


def _server(request: rest.ApiRequest, session: Session, rule: str) -> models.Server:
    microversions.require(request, "server_tags")
    server = common.get_server(session, request, request.path_params["server_id"])
    common.enforce(request, POLICY + rule, {"project_id": server.project_id})
    return server


def _writable(server: models.Server, action: str) -> None:
    if server.vm_state not in WRITABLE:
        raise errors.invalid_state(server.id, "vm_state", server.vm_state, action)


def tags_of(session: Session, server_id: str) -> list[str]:
    T = models.ServerTag
    return list(session.scalars(select(T.tag).where(T.server_id == server_id).order_by(T.tag)))


def set_tags(session: Session, server: models.Server, tags: list[str]) -> list[str]:
    """Make the server's tags exactly ``tags`` (already validated)."""
    wanted = list(dict.fromkeys(tags))
    session.query(models.ServerTag).filter(models.ServerTag.server_id == server.id).delete(
        synchronize_session=False
    )
    for tag in wanted:
        session.add(models.ServerTag(server_id=server.id, tag=tag))
    server.updated_at = common.now()
    session.flush()
    return sorted(wanted)


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    server = _server(request, session, "index")
    return {"tags": tags_of(session, server.id)}


def update_all(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    microversions.require(request, "server_tags")
    body = server_schema.body(request, server_schema.TAGS_SET)
    server = _server(request, session, "update_all")
    _writable(server, "update tags")
    return {"tags": set_tags(session, server, body["tags"])}


def delete_all(request: rest.ApiRequest, session: Session) -> None:
    server = _server(request, session, "delete_all")
    _writable(server, "delete tags")
    set_tags(session, server, [])
    return None


def show(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    server = _server(request, session, "show")
    tag = request.path_params["tag"]
    if session.get(models.ServerTag, (server.id, tag)) is None:
        raise errors.not_found(f"Server {server.id} has no tag '{tag}'")
    return rest.ApiResponse(204)


def update(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    microversions.require(request, "server_tags")
    if request.body is not None:
        server_schema.validate({"type": "null"}, request.body)
    server = _server(request, session, "update")
    _writable(server, "update tag")
    tag = request.path_params["tag"]
    try:
        jsonschema.validate(tag, server_schema.TAG)
    except jsonschema.ValidationError as exc:
        raise errors.bad_request(
            f"Tag '{tag}' is invalid. It must be a non empty string without characters '/' "
            f"and ','. Validation error message: {exc.message}"
        ) from None
    current = tags_of(session, server.id)
    if len(current) >= server_schema.MAX_TAGS:
        raise errors.bad_request(
            f"The number of tags exceeded the per-server limit {server_schema.MAX_TAGS}"
        )
    if tag in current:
        return rest.ApiResponse(204)
    session.add(models.ServerTag(server_id=server.id, tag=tag))
    server.updated_at = common.now()
    location = common.link(request, f"servers/{server.id}/tags/{tag}")[0]["href"]
    return rest.ApiResponse(201, headers={"Location": location})


def delete(request: rest.ApiRequest, session: Session) -> None:
    server = _server(request, session, "delete")
    _writable(server, "delete tag")
    tag = request.path_params["tag"]
    row = session.get(models.ServerTag, (server.id, tag))
    if row is None:
        raise errors.not_found(f"Instance {server.id} has no tag '{tag}'")
    session.delete(row)
    server.updated_at = common.now()
    return None


ROUTES = [
    rest.Route("GET", "/v2.1/servers/{server_id}/tags", index),
    rest.Route("PUT", "/v2.1/servers/{server_id}/tags", update_all),
    rest.Route("DELETE", "/v2.1/servers/{server_id}/tags", delete_all),
    rest.Route("GET", "/v2.1/servers/{server_id}/tags/{tag}", show),
    rest.Route("PUT", "/v2.1/servers/{server_id}/tags/{tag}", update),
    rest.Route("DELETE", "/v2.1/servers/{server_id}/tags/{tag}", delete),
]
