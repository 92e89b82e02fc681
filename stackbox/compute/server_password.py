"""``/servers/{id}/os-server-password``: the encrypted admin password a guest posts to the
metadata service (encrypted with the server's key pair), for its owner to fetch and
decrypt; DELETE clears it.

stackbox has no metadata service yet, so no guest can post one: the password is
always empty (Nova answers ``""`` when none was set) and clearing it changes nothing.
The server must exist and the caller may see it (404), with Nova's policy on its
project.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import common

POLICY = "os_compute_api:os-server-password:"


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    server = common.get_server(session, request, request.path_params["server_id"])
    common.enforce(request, POLICY + "show", {"project_id": server.project_id})
    return {"password": ""}


def clear(request: rest.ApiRequest, session: Session) -> None:
    server = common.get_server(session, request, request.path_params["server_id"])
    common.enforce(request, POLICY + "clear", {"project_id": server.project_id})


ROUTES: list[rest.Route] = [
    rest.Route("GET", "/v2.1/servers/{server_id}/os-server-password", show),
    rest.Route("DELETE", "/v2.1/servers/{server_id}/os-server-password", clear),
]
