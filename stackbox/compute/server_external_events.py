"""``POST /os-server-external-events``: other services (Neutron, Cinder, Ironic) telling
Nova about a server (a VIF plugged, a volume extended, the power changed).

Each event is answered on its own, as Nova does: 404 for a server that does not
exist, 400 for an event that needs a ``tag`` and has none, 422 for a server with no
host yet, 200 (``completed``) otherwise; the response is 200 when every event was
accepted and 207 when some were not. The events Nova records as instance actions are
recorded too (``volume-extended`` as ``extend_volume``, ``power-update`` as
``start``/``stop``); the others need nothing from the fake driver.
"""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import actions_log, common, microversions, models, server_validation

NAMES = ["network-changed", "network-vif-plugged", "network-vif-unplugged", "network-vif-deleted"]
# Names each later microversion accepts.
LATER_NAMES = (
    ("2.51", "volume-extended"),
    ("2.76", "power-update"),
    ("2.82", "accelerator-request-bound"),
    ("2.93", "volume-reimaged"),
)
STATUSES = ["failed", "completed", "in-progress"]
TAG_REQUIRED = ("volume-extended", "power-update", "accelerator-request-bound")
POWER_ACTIONS = {"POWER_ON": "start", "POWER_OFF": "stop"}


def schema(request: rest.ApiRequest) -> dict[str, Any]:
    version = microversions.of(request)
    names = NAMES + [n for v, n in LATER_NAMES if version >= microversions.Version.parse(v)]
    event = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "enum": names},
            "server_uuid": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": STATUSES},
            "tag": {"type": "string", "maxLength": 255},
        },
        "required": ["name", "server_uuid"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"events": {"type": "array", "minItems": 1, "items": event}},
        "required": ["events"],
        "additionalProperties": False,
    }


def _record(
    session: Session, request: rest.ApiRequest, server: models.Server, event: dict[str, Any]
) -> None:
    """The instance action Nova starts for this event, if any."""
    action = None
    if event["name"] == "volume-extended":
        action = "extend_volume"
    elif event["name"] == "power-update":
        action = POWER_ACTIONS.get(event.get("tag") or "")
    if action is not None:
        actions_log.start(session, request, server, action)


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    common.enforce(request, "os_compute_api:os-server-external-events:create")
    body = server_validation.body(request, schema(request))
    events: list[dict[str, Any]] = copy.deepcopy(body["events"])
    ids = sorted({e["server_uuid"] for e in events})
    S = models.Server
    servers = {
        s.id: s for s in session.scalars(select(S).where(S.id.in_(ids), S.deleted.is_(False)))
    }
    status = 200
    for event in events:
        server = servers.get(event["server_uuid"])
        event.setdefault("status", "completed")
        if server is None:
            event["status"], event["code"] = "failed", 404
        elif event["name"] in TAG_REQUIRED and event.get("tag") is None:
            event["status"], event["code"] = "failed", 400
        elif not server.host:
            event["status"], event["code"] = "failed", 422
        else:
            event["status"], event["code"] = "completed", 200
            _record(session, request, server, event)
            continue
        status = 207
    return rest.ApiResponse(status, {"events": events})


ROUTES: list[rest.Route] = [
    rest.Route("POST", "/v2.1/os-server-external-events", create),
]
