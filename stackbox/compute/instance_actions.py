"""``os-instance-actions``: what was done to a server, newest first, with the events of
each action (the API's own and the compute agent's steps).

From 2.21 a deleted server's actions stay listable; from 2.58 the list pages
(``limit``/``marker`` by request id, ``changes-since``; 2.66 ``changes-before``) and
actions show ``updated_at``. Events are shown to whom ``os-instance-actions:events``
allows (admins: with tracebacks, and from 2.62 the host), and from 2.51 to every
reader without tracebacks; from 2.62 each event has its hashed ``hostId``, from 2.84
its ``details`` (per ``events:details``).
"""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import common, errors, microversions, models, server_schema

POLICY = "os_compute_api:os-instance-actions:"
MAX_LIMIT = 1000


def _single(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "maxItems": 1, "items": schema}


_TIME = {"type": "string", "format": "date-time"}
QUERY_V258: dict[str, Any] = {
    "type": "object",
    "properties": {
        "limit": _single(server_schema.NON_NEGATIVE_INTEGER),
        "marker": _single({"type": "string"}),
        "changes-since": _single(_TIME),
    },
    "additionalProperties": False,
}
QUERY_V266: dict[str, Any] = {
    **QUERY_V258,
    "properties": {**QUERY_V258["properties"], "changes-before": _single(_TIME)},
}


def _server(session: Session, request: rest.ApiRequest, rule: str) -> models.Server:
    server = common.get_server(
        session,
        request,
        request.path_params["server_id"],
        deleted=microversions.at_least(request, "instance_actions_deleted"),
    )
    common.enforce(request, POLICY + rule, {"project_id": server.project_id})
    return server


def _action_body(request: rest.ApiRequest, action: models.InstanceAction) -> dict[str, Any]:
    body = {
        "action": action.action,
        "instance_uuid": action.server_id,
        "request_id": action.request_id,
        "user_id": action.user_id,
        "project_id": action.project_id,
        "start_time": common.isotime_micro(action.start_time),
        "message": action.message,
    }
    if microversions.at_least(request, "instance_actions_paging"):
        body["updated_at"] = common.isotime_micro(action.updated_at or action.start_time)
    return body


def _time(request: rest.ApiRequest, name: str) -> datetime.datetime | None:
    value = request.arg(name)
    return common.parse_time(value, name) if value is not None else None


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    server = _server(session, request, "list")
    A = models.InstanceAction
    query = select(A).where(A.server_id == server.id)
    paging = microversions.at_least(request, "instance_actions_paging")
    if paging:
        schema = QUERY_V266 if microversions.at_least(request, "changes_before") else QUERY_V258
        server_schema.validate(schema, dict(request.query), query=True)
        since = _time(request, "changes-since")
        before = _time(request, "changes-before")
        if since and before and before < since:
            raise errors.bad_request(
                "The value of changes-since must be less than or equal to changes-before."
            )
        if since is not None:
            query = query.where(A.updated_at >= since)
        if before is not None:
            query = query.where(A.updated_at <= before)
    actions = list(session.scalars(query.order_by(A.start_time.desc(), A.id.desc())))
    bodies = [_action_body(request, a) for a in actions]
    if not paging:
        return {"instanceActions": bodies}
    marker = request.arg("marker")
    if marker is not None and not any(b["request_id"] == marker for b in bodies):
        raise errors.bad_request(f"Marker {marker} could not be found.")
    chunk, next_marker = common.page(request, bodies, key="request_id", max_limit=MAX_LIMIT)
    result: dict[str, Any] = {"instanceActions": chunk}
    if next_marker is not None:
        result["links"] = [common.next_link(request, next_marker)]
    return result


def _host_id(host: str | None, project_id: str | None) -> str:
    if not host:
        return ""
    return hashlib.sha224(((project_id or "") + host).encode()).hexdigest()


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    server = _server(session, request, "show")
    request_id = request.path_params["request_id"]
    A = models.InstanceAction
    action = session.scalars(
        select(A)
        .where(A.server_id == server.id, A.request_id == request_id)
        .order_by(A.start_time.desc(), A.id.desc())
    ).first()
    if action is None:
        raise errors.not_found(f"Action {request_id} not found")
    body = _action_body(request, action)
    target = {"project_id": server.project_id}
    admin_view = common.allowed(request, POLICY + "events", target)
    if not admin_view and not microversions.at_least(request, "instance_action_events_hostid"):
        return {"instanceAction": body}
    with_host_id = microversions.at_least(request, "instance_action_event_host")
    with_details = microversions.at_least(request, "action_event_details") and common.allowed(
        request, POLICY + "events:details", target
    )
    E = models.InstanceActionEvent
    events = session.scalars(
        select(E).where(E.action_id == action.id).order_by(E.start_time.desc(), E.id.desc())
    )
    rendered = []
    for event in events:
        item: dict[str, Any] = {
            "event": event.event,
            "start_time": common.isotime_micro(event.start_time),
            "finish_time": common.isotime_micro(event.finish_time),
            "result": event.result,
        }
        if admin_view:
            item["traceback"] = event.traceback
            if with_host_id:
                item["host"] = event.host or ""
        if with_host_id:
            item["hostId"] = _host_id(event.host, action.project_id or server.project_id)
        if with_details:
            item["details"] = event.details
        rendered.append(item)
    body["events"] = rendered
    return {"instanceAction": body}


ROUTES = [
    rest.Route("GET", "/v2.1/servers/{server_id}/os-instance-actions", index),
    rest.Route("GET", "/v2.1/servers/{server_id}/os-instance-actions/{request_id}", show),
]
