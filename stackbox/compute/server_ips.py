"""/servers/{id}/ips and /ips/{network_label}: the server's addresses by network name
(fixed, then floating), from its ports."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import common, errors, models, network_glue


def _addresses(request: rest.ApiRequest, session: Session, rule: str) -> dict[str, Any]:
    server: models.Server = common.get_server(session, request, request.path_params["server_id"])
    common.enforce(request, f"os_compute_api:ips:{rule}", {"project_id": server.project_id})
    found = network_glue.load(session, [server]).addresses.get(server.id, {})
    return {
        label: [{"version": e["version"], "addr": e["addr"]} for e in entries]
        for label, entries in found.items()
    }


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    return {"addresses": _addresses(request, session, "index")}


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    addresses = _addresses(request, session, "show")
    label = request.path_params["network_label"]
    if label not in addresses:
        raise errors.not_found("Instance is not a member of specified network")
    return {label: addresses[label]}


ROUTES = [
    rest.Route("GET", "/v2.1/servers/{server_id}/ips", index),
    rest.Route("GET", "/v2.1/servers/{server_id}/ips/{network_label}", show),
]
