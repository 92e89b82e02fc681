"""Availability zones (Neutron's ``availability_zone`` extension), as agents report them.

A zone exists for networks where a DHCP agent reports it, for routers where an
L3 agent does; it is ``available`` while one of those agents is enabled (liveness
does not matter, as in Neutron).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.network import agent_state, common, errors, models
from stackbox.network import attributes as A

ATTRS = A.spec(A.Attr("name", sort=True), A.Attr("resource", sort=True), A.Attr("state", sort=True))

RESOURCE_OF_AGENT = {agent_state.DHCP: "network", agent_state.L3: "router"}


def zones(session: Session) -> dict[tuple[str, str], str]:
    """(zone name, resource) -> "available" | "unavailable"."""
    found: dict[tuple[str, str], bool] = {}
    for agent in session.scalars(
        select(models.Agent).where(models.Agent.agent_type.in_(tuple(RESOURCE_OF_AGENT)))
    ):
        if not agent.availability_zone:
            continue
        key = (agent.availability_zone, RESOURCE_OF_AGENT[agent.agent_type])
        found[key] = found.get(key, False) or agent.admin_state_up
    return {key: "available" if up else "unavailable" for key, up in found.items()}


def validate(session: Session, resource: str, hints: list[str]) -> None:
    """404 AvailabilityZoneNotFound for a hint no agent serving ``resource`` reports."""
    known = {name for name, kind in zones(session) if kind == resource}
    for hint in hints:
        if hint not in known:
            raise errors.not_found(
                "AvailabilityZoneNotFound", f"AvailabilityZone {hint} could not be found."
            )


def list_zones(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, "get_availability_zone", {"project_id": request.context.project_id})
    bodies = [
        {"name": name, "resource": resource, "state": state}
        for (name, resource), state in sorted(zones(session).items())
    ]
    # Zones have no id to page by: a marker would name nothing.
    query = {k: v for k, v in request.query.items() if k not in ("marker", "page_reverse")}
    return common.collection(
        dataclasses.replace(request, query=query), "availability_zones", bodies, ATTRS
    )


ROUTES = [rest.Route("GET", "/v2.0/availability_zones", list_zones)]
