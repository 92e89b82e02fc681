"""``os-volume_attachments``: answered honestly until a Block Storage service exists.

No server has a volume, so the list is empty and any named volume is one the cloud
does not have: Nova's answers for a volume that cannot be found (404), after the same
checks Nova makes first (the server, policy, the request body, lock and state).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import common, errors, microversions, models, server_schema, states
from stackbox.compute import server_action_base as base

POLICY = "os_compute_api:os-volumes-attachments:"
NO_BLOCK_STORAGE = "Block Storage is not available in this cloud."
DEVICE = {"type": ["string", "null"], "pattern": "(^/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$"}
ATTACHABLE = (
    states.ACTIVE,
    states.PAUSED,
    states.STOPPED,
    states.RESIZED,
    states.SOFT_DELETED,
    states.SHELVED,
    states.SHELVED_OFFLOADED,
)


def _body_schema(tag: bool, delete_on_termination: bool) -> dict[str, Any]:
    props: dict[str, Any] = {"volumeId": server_schema.UUID, "device": DEVICE}
    if tag:
        props["tag"] = server_schema.TAG
    if delete_on_termination:
        props["delete_on_termination"] = server_schema.BOOLEAN
    return {
        "type": "object",
        "properties": {
            "volumeAttachment": {
                "type": "object",
                "properties": props,
                "required": ["volumeId"],
                "additionalProperties": False,
            }
        },
        "required": ["volumeAttachment"],
        "additionalProperties": False,
    }


CREATE = _body_schema(False, False)
CREATE_V249 = _body_schema(True, False)
CREATE_V279 = _body_schema(True, True)
UPDATE = _body_schema(False, False)


def _server(session: Session, request: rest.ApiRequest, rule: str) -> models.Server:
    server = common.get_server(session, request, request.path_params["server_id"])
    common.enforce(request, POLICY + rule, {"project_id": server.project_id})
    return server


def _volume_not_found(volume_id: str) -> rest.NotFound:
    return errors.not_found(f"Volume {volume_id} could not be found. {NO_BLOCK_STORAGE}")


def _not_attached(server_id: str, volume_id: str) -> rest.NotFound:
    return errors.not_found(f"Instance {server_id} is not attached to volume {volume_id}")


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    _server(session, request, "index")
    return {"volumeAttachments": []}


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    server = _server(session, request, "show")
    raise _not_attached(server.id, request.path_params["volume_id"])


def create(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    if microversions.at_least(request, "delete_on_termination"):
        schema = CREATE_V279
    elif microversions.at_least(request, "volume_tag_attach"):
        schema = CREATE_V249
    else:
        schema = CREATE
    server = _server(session, request, "create")
    body = server_schema.body(request, schema)
    base.check_lock(request, server)
    base.check_state(server, "attach_volume", ATTACHABLE)
    raise _volume_not_found(body["volumeAttachment"]["volumeId"])


def update(request: rest.ApiRequest, session: Session) -> None:
    server = _server(session, request, "update")
    server_schema.body(request, UPDATE)
    raise _not_attached(server.id, request.path_params["volume_id"])


def delete(request: rest.ApiRequest, session: Session) -> None:
    _server(session, request, "delete")
    raise _volume_not_found(request.path_params["volume_id"])


PATH = "/v2.1/servers/{server_id}/os-volume_attachments"
ROUTES = [
    rest.Route("GET", PATH, index),
    rest.Route("POST", PATH, create),
    rest.Route("GET", PATH + "/{volume_id}", show),
    rest.Route("PUT", PATH + "/{volume_id}", update),
    rest.Route("DELETE", PATH + "/{volume_id}", delete),
]
