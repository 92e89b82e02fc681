"""Servers: create (``server_create``), show, update and delete.

A delete sets task ``deleting``, bumps the generation and nudges the host's agent,
which destroys the instance and reports; the controller's intake then calls
``finish_delete``. A server that was never placed, or whose host's compute service
is down, is deleted at once by the API (Nova's local delete). Deleted rows stay
(soft delete) for ``changes-since`` and admins' ``deleted=True`` listings.

For other modules:

    finish_delete(session, server) -> None
        Let the server go: its ports (created ones deleted, the user's unbound), its
        claims, its group membership; the row marked deleted (vm_state deleted).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import (
    actions_log,
    common,
    errors,
    liveness,
    models,
    network_glue,
    notify,
    placement,
    runtime,
    server_create,
    server_create_request,
    server_schema,
    server_views,
    states,
)

COMPUTE_BINARY = "nova-compute"
TERMINATE_EVENT = "compute_terminate_instance"


def _server(request: rest.ApiRequest, session: Session) -> models.Server:
    return common.get_server(session, request, request.path_params["server_id"])


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    server = _server(request, session)
    common.enforce(request, "os_compute_api:servers:show", {"project_id": server.project_id})
    return {"server": server_views.render(session, request, server)}


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    changes = server_schema.body(request, server_schema.update_schema(request))["server"]
    server = _server(request, session)
    common.enforce(request, "os_compute_api:servers:update", common.server_target(server))
    if "name" in changes:
        server.name = changes["name"]
    if "description" in changes:
        server.description = changes["description"]
    if "hostname" in changes:
        server.hostname = changes["hostname"]
    if "OS-DCF:diskConfig" in changes:
        server.auto_disk_config = changes["OS-DCF:diskConfig"] == "AUTO"
    if "accessIPv4" in changes:
        server.access_ip_v4 = server_create_request.normalized_ip(changes["accessIPv4"])
    if "accessIPv6" in changes:
        server.access_ip_v6 = server_create_request.normalized_ip(changes["accessIPv6"])
    server.updated_at = common.now()
    session.flush()
    return {"server": server_views.render(session, request, server, purpose="update")}


# --- delete ---------------------------------------------------------------------------------


def host_is_up(session: Session, host: str | None) -> bool:
    """Whether the compute service of ``host`` reports (else the API deletes by itself)."""
    if not host:
        return False
    service = session.scalars(
        select(models.Service).where(
            models.Service.host == host, models.Service.binary == COMPUTE_BINARY
        )
    ).first()
    if service is None:
        return False
    return liveness.is_up(service, common.now(), runtime.get().settings.service_down_time)


def finish_delete(session: Session, server: models.Server) -> None:
    """The last step of a delete (see the module's docstring)."""
    network_glue.release_ports(session, server)
    placement.release(session, server.id)
    session.query(models.ServerGroupMember).filter(
        models.ServerGroupMember.server_id == server.id
    ).delete(synchronize_session=False)
    moment = common.now()
    server.vm_state = states.DELETED
    server.task_state = None
    server.power_state = states.NOSTATE
    server.deleted = True
    server.deleted_at = moment
    server.terminated_at = moment
    server.updated_at = moment
    server.progress = 0
    session.flush()


def delete(request: rest.ApiRequest, session: Session) -> None:
    server = _server(request, session)
    common.enforce(request, "os_compute_api:servers:delete", common.server_target(server))
    if server.locked and not common.is_admin(request.context):
        raise errors.locked(server.id)
    if not states.can_start("delete", server.vm_state, server.task_state):
        raise errors.invalid_state(server.id, "vm_state", server.vm_state, "delete")
    if not host_is_up(session, server.host):
        action = actions_log.start(session, request, server, "delete")
        finish_delete(session, server)
        actions_log.finish(session, action)
        return None
    if server.task_state == states.DELETING:
        return None  # already on its way (Nova ignores the repeat)
    action = actions_log.start(session, request, server, "delete")
    actions_log.add_event(session, action, TERMINATE_EVENT, host=server.host)
    server.task_state = states.DELETING
    server.generation += 1
    server.progress = 0
    server.updated_at = common.now()
    notify.server(session, server.id, server.host)
    return None


ROUTES = [
    rest.Route("POST", "/v2.1/servers", server_create.create),
    rest.Route("GET", "/v2.1/servers/{server_id}", show),
    rest.Route("PUT", "/v2.1/servers/{server_id}", update),
    rest.Route("DELETE", "/v2.1/servers/{server_id}", delete),
]
