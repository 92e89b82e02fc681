"""/servers/{id}/metadata: list, merge (POST), replace (PUT), and one item (GET, PUT,
DELETE), with Nova's checks: the metadata_items quota (403), a locked server (409 for
non-admins) and a server that is not active, paused, suspended or stopped, has a task
running or never launched (409)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import common, errors, models, quotas, server_schema, states

POLICY = "os_compute_api:server-metadata:"
# Nova's update/delete_instance_metadata: these vm states, no task.
WRITABLE = (states.ACTIVE, states.PAUSED, states.SUSPENDED, states.STOPPED)


def _server(request: rest.ApiRequest, session: Session, rule: str) -> models.Server:
    server = common.get_server(session, request, request.path_params["server_id"])
    common.enforce(request, POLICY + rule, {"project_id": server.project_id})
    return server


def current(session: Session, server_id: str) -> dict[str, str]:
    M = models.ServerMetadata
    return dict(
        session.execute(
            select(M.key, M.value).where(M.server_id == server_id).order_by(M.key)
        ).all()
    )


def _writable(request: rest.ApiRequest, server: models.Server, action: str) -> None:
    if server.locked and not common.is_admin(request.context):
        raise errors.locked(server.id)
    if server.vm_state not in WRITABLE:
        raise errors.invalid_state(server.id, "vm_state", server.vm_state, action)
    if server.task_state is not None:
        raise errors.invalid_state(server.id, "task_state", server.task_state, action)
    if server.launched_at is None:
        raise errors.invalid_state(server.id, "launched_at", None, action)


def replace(session: Session, server: models.Server, metadata: dict[str, str]) -> None:
    """Make the server's metadata exactly ``metadata`` (quota checked by the caller)."""
    M = models.ServerMetadata
    have = {row.key: row for row in session.scalars(select(M).where(M.server_id == server.id))}
    for key, row in have.items():
        if key not in metadata:
            session.delete(row)
        elif row.value != metadata[key]:
            row.value = metadata[key]
    for key, value in metadata.items():
        if key not in have:
            session.add(M(server_id=server.id, key=key, value=value))
    server.updated_at = common.now()
    session.flush()


def _update(
    request: rest.ApiRequest,
    session: Session,
    server: models.Server,
    metadata: dict[str, str],
    *,
    delete: bool,
) -> dict[str, str]:
    _writable(request, server, "update metadata")
    wanted = dict(metadata) if delete else {**current(session, server.id), **metadata}
    quotas.check_metadata_items(session, server.project_id, len(wanted))
    replace(session, server, wanted)
    return wanted


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    server = _server(request, session, "index")
    return {"metadata": current(session, server.id)}


def create(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    body = server_schema.body(request, server_schema.METADATA_SET)
    server = _server(request, session, "create")
    return {"metadata": _update(request, session, server, body["metadata"], delete=False)}


def update_all(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    body = server_schema.body(request, server_schema.METADATA_SET)
    server = _server(request, session, "update_all")
    return {"metadata": _update(request, session, server, body["metadata"], delete=True)}


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    server = _server(request, session, "show")
    key = request.path_params["key"]
    found = current(session, server.id)
    if key not in found:
        raise errors.not_found("Metadata item was not found")
    return {"meta": {key: found[key]}}


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    body = server_schema.body(request, server_schema.METADATA_ITEM)
    server = _server(request, session, "update")
    key = request.path_params["key"]
    item = body["meta"]
    if key not in item:
        raise errors.bad_request("Request body and URI mismatch")
    _update(request, session, server, item, delete=False)
    return {"meta": item}


def delete(request: rest.ApiRequest, session: Session) -> None:
    server = _server(request, session, "delete")
    key = request.path_params["key"]
    row = session.get(models.ServerMetadata, (server.id, key))
    if row is None:
        raise errors.not_found("Metadata item was not found")
    _writable(request, server, "delete metadata")
    session.delete(row)
    server.updated_at = common.now()
    return None


ROUTES = [
    rest.Route("GET", "/v2.1/servers/{server_id}/metadata", index),
    rest.Route("POST", "/v2.1/servers/{server_id}/metadata", create),
    rest.Route("PUT", "/v2.1/servers/{server_id}/metadata", update_all),
    rest.Route("GET", "/v2.1/servers/{server_id}/metadata/{key}", show),
    rest.Route("PUT", "/v2.1/servers/{server_id}/metadata/{key}", update),
    rest.Route("DELETE", "/v2.1/servers/{server_id}/metadata/{key}", delete),
]
