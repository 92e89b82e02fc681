"""``os-interface``: a server's ports (list, show), attaching one (a new port on a
network, or the user's own port) and detaching it.

Attach and detach are done in the API's transaction through the networking service
(``network_glue``): the port is created (or taken over) and bound to the server's
host, or deleted (or, if the user brought it, unbound); the server's record of its
ports (``requested_networks``) follows, and the host's agent is nudged to plug or
unplug. Both are instance actions (``attach_interface`` / ``detach_interface``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import (
    common,
    errors,
    microversions,
    models,
    network_glue,
    server_schema,
    states,
)
from stackbox.compute import server_action_base as base
from stackbox.network import models as net_models
from stackbox.network import ports as net_ports
from stackbox.network import rbac

POLICY = "os_compute_api:os-attach-interfaces:"
ATTACHABLE = (states.ACTIVE, states.PAUSED, states.STOPPED)


def _attachment(tag: bool) -> dict[str, Any]:
    props: dict[str, Any] = {
        "net_id": server_schema.UUID,
        "port_id": server_schema.UUID,
        "fixed_ips": {
            "type": "array",
            "minItems": 1,
            "maxItems": 1,
            "items": {
                "type": "object",
                "properties": {"ip_address": server_schema.IP_ADDRESS},
                "required": ["ip_address"],
                "additionalProperties": False,
            },
        },
    }
    if tag:
        props["tag"] = server_schema.TAG
    return {
        "type": "object",
        "properties": {
            "interfaceAttachment": {
                "type": "object",
                "properties": props,
                "additionalProperties": False,
            }
        },
        "additionalProperties": False,
    }


CREATE = _attachment(tag=False)
CREATE_V249 = _attachment(tag=True)


# --- views ----------------------------------------------------------------------------------


def _records(server: models.Server) -> list[dict[str, Any]]:
    records = server.requested_networks
    return [r for r in records if isinstance(r, dict)] if isinstance(records, list) else []


def _fixed_ips(session: Session, port_ids: list[str]) -> dict[str, list[dict[str, str]]]:
    A = net_models.IPAllocation
    found: dict[str, list[dict[str, str]]] = {pid: [] for pid in port_ids}
    if not port_ids:
        return found
    for row in session.scalars(
        select(A).where(A.port_id.in_(port_ids)).order_by(A.subnet_id, A.ip_address)
    ):
        found[row.port_id].append({"subnet_id": row.subnet_id, "ip_address": row.ip_address})
    return found


def _render(
    request: rest.ApiRequest,
    port: net_models.Port,
    fixed: list[dict[str, str]],
    tags: dict[str, Any],
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "net_id": port.network_id,
        "port_id": port.id,
        "mac_addr": port.mac_address,
        "port_state": port.status,
        "fixed_ips": fixed,
    }
    if microversions.at_least(request, "vif_tags_shown"):
        body["tag"] = tags.get(port.id)
    return body


def _tags(server: models.Server) -> dict[str, Any]:
    return {str(r["port_id"]): r.get("tag") for r in _records(server) if r.get("port_id")}


def _server(session: Session, request: rest.ApiRequest, rule: str) -> models.Server:
    server = common.get_server(session, request, request.path_params["server_id"])
    common.enforce(request, POLICY + rule, {"project_id": server.project_id})
    return server


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    server = _server(session, request, "list")
    P = net_models.Port
    found = list(
        session.scalars(select(P).where(P.device_id == server.id).order_by(P.created_at, P.id))
    )
    fixed = _fixed_ips(session, [p.id for p in found])
    tags = _tags(server)
    return {"interfaceAttachments": [_render(request, p, fixed[p.id], tags) for p in found]}


def _show(session: Session, request: rest.ApiRequest, server: models.Server, port_id: str) -> Any:
    try:
        port = net_ports.get_visible(session, request.context, port_id)
    except rest.NotFound:
        raise errors.not_found(f"Port id {port_id} could not be found.") from None
    if port.device_id != server.id:
        raise errors.not_found(f"Instance {server.id} does not have a port with id {port_id}")
    fixed = _fixed_ips(session, [port.id])
    return {"interfaceAttachment": _render(request, port, fixed[port.id], _tags(server))}


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    server = _server(session, request, "show")
    return dict(_show(session, request, server, request.path_params["port_id"]))


# --- attach ---------------------------------------------------------------------------------


def _pick_network(session: Session, server: models.Server, request: rest.ApiRequest) -> str:
    project = request.context.project_id or server.project_id
    nets = network_glue.available_networks(session, project)
    if len(nets) > 1:
        raise errors.bad_request(
            "Multiple possible networks found, use a Network ID to be more specific."
        )
    if not nets:
        raise errors.bad_request(
            f"No specific network was requested and none are available for project '{project}'."
        )
    return nets[0].id


def _check_network(session: Session, request: rest.ApiRequest, network_id: str) -> None:
    N = net_models.Network
    query = select(N).where(N.id == network_id)
    if not common.is_admin(request.context):
        query = query.where(rbac.network_clause(request.context))
    if session.scalars(query).first() is None:
        raise errors.not_found(f"Network {network_id} could not be found.")


def _check_port(session: Session, request: rest.ApiRequest, port_id: str) -> None:
    try:
        port = net_ports.get_visible(session, request.context, port_id)
    except rest.NotFound:
        raise errors.not_found(f"Port id {port_id} could not be found.") from None
    if port.device_id:
        raise errors.conflict(f"Port {port_id} is still in use.")


def _check_ip_free(session: Session, network_id: str, address: str) -> None:
    A = net_models.IPAllocation
    holder = session.scalars(
        select(A.port_id).where(A.network_id == network_id, A.ip_address == address)
    ).first()
    if holder is not None:
        port = session.get(net_models.Port, holder)
        raise errors.conflict(
            f"Fixed IP address {address} is already in use on instance "
            f"{port.device_id if port is not None else ''}."
        )


def _as_compute_error(exc: rest.ApiError) -> rest.ApiError:
    """The glue answers as a boot does (400 for what is missing); attach answers 404."""
    if isinstance(exc, rest.BadRequest) and exc.message.endswith("could not be found."):
        return errors.not_found(exc.message)
    return exc


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    tagged = microversions.at_least(request, "volume_tag_attach")
    body = request.body if request.body is not None else {}
    server_schema.validate(CREATE_V249 if tagged else CREATE, body)
    attachment = body.get("interfaceAttachment") or {}
    network_id = attachment.get("net_id")
    port_id = attachment.get("port_id")
    tag = attachment.get("tag")
    fixed = attachment.get("fixed_ips") or []
    address = fixed[0]["ip_address"] if fixed else None
    if network_id and port_id:
        raise errors.bad_request("Must not input both network_id and port_id")
    if address and not network_id:
        raise errors.bad_request("Must input network_id when request IP address")
    server = _server(session, request, "create")
    base.check_lock(request, server)
    base.check_state(server, "attach_interface", ATTACHABLE, (None,))
    if port_id:
        _check_port(session, request, port_id)
    else:
        network_id = network_id or _pick_network(session, server, request)
        _check_network(session, request, network_id)
        if address:
            _check_ip_free(session, network_id, address)
    item = network_glue.Request(network_id=network_id, port_id=port_id, fixed_ip=address, tag=tag)
    try:
        if port_id:
            record = network_glue.bind_existing_port(session, request.context, server, item)
        else:
            record = network_glue.create_port(session, request.context, server, item, None)
    except rest.ApiError as exc:
        raise _as_compute_error(exc) from None
    server.requested_networks = [*_records(server), record]
    base.finish_now(session, request, server, "attach_interface", event="compute_attach_interface")
    base.nudge(session, server)
    session.flush()
    return rest.ApiResponse(200, _show(session, request, server, record["port_id"]))


def delete(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    server = _server(session, request, "delete")
    port_id = request.path_params["port_id"]
    base.check_lock(request, server)
    base.check_state(server, "detach_interface", ATTACHABLE, (None,))
    port = session.get(net_models.Port, port_id)
    if port is None or port.device_id != server.id:
        raise errors.not_found(f"Port id {port_id} could not be found.")
    network_glue.release_port(session, server, port)
    server.requested_networks = [r for r in _records(server) if r.get("port_id") != port_id]
    base.finish_now(session, request, server, "detach_interface", event="compute_detach_interface")
    base.nudge(session, server)
    return rest.ApiResponse(202)


ROUTES = [
    rest.Route("GET", "/v2.1/servers/{server_id}/os-interface", index),
    rest.Route("POST", "/v2.1/servers/{server_id}/os-interface", create),
    rest.Route("GET", "/v2.1/servers/{server_id}/os-interface/{port_id}", show),
    rest.Route("DELETE", "/v2.1/servers/{server_id}/os-interface/{port_id}", delete),
]
