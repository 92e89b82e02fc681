"""Agents (Neutron's ``agent`` extension): the agents known from their heartbeats.

An agent is alive while its last heartbeat is younger than ``agent_down_time``.
Admins list, show, disable (``admin_state_up``), describe and delete agents; a
deleted agent that still runs registers again, with a new id, at its next
heartbeat (as in Neutron). Everyone else sees an empty list and 404s.

The DHCP and L3 agent-scheduler endpoints (``/agents/{id}/dhcp-networks`` and
friends) are in ``agent_scheduler_api``; their routes are served from here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import policy, rest
from stackbox.network import (
    agent_scheduler_api,
    agent_scheduling,
    agent_state,
    common,
    errors,
    models,
    notify,
)
from stackbox.network import attributes as A

RESOURCE = "agent"

ATTRS = A.spec(
    A.Attr("id", sort=True),
    A.Attr("agent_type", sort=True),
    A.Attr("binary", sort=True),
    A.Attr("topic", sort=True),
    A.Attr("host", sort=True),
    A.Attr("admin_state_up", put=True, validate=A.boolean, sort=True),
    A.Attr("created_at", filter=False, sort=True),
    A.Attr("started_at", filter=False, sort=True),
    A.Attr("heartbeat_timestamp", filter=False, sort=True),
    A.Attr("alive", sort=True),
    A.Attr("configurations", filter=False),
    A.Attr("description", put=True, validate=A.string_or_none(255)),
    A.Attr("availability_zone", sort=True),
    A.Attr("resources_synced", filter=False),
    A.Attr("resource_versions", filter=False),
)

# Neutron's reference deployment compares these on MySQL, whose default collation
# ignores case (Tempest asks for agent_type "DHCP Agent" and expects the DHCP agent).
CASELESS_FILTERS = ("agent_type", "binary", "topic", "host", "availability_zone")


def _caseless(name: str) -> Any:
    def matches(item: dict[str, Any], wanted: list[str]) -> bool:
        value = item.get(name)
        return value is not None and str(value).lower() in {w.lower() for w in wanted}

    return matches


def list_agents(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    # Agents have no owner: whoever may not read them gets an empty list, as in Neutron.
    if not policy.allowed(request.context, "get_agent", {}, service=common.SERVICE):
        return common.collection(request, "agents", [], ATTRS)
    now = common.now()
    bodies = [agent_state.render(agent, now) for agent in session.scalars(select(models.Agent))]
    special = {name: _caseless(name) for name in CASELESS_FILTERS}
    return common.collection(request, "agents", bodies, ATTRS, special=special)


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    agent_id = request.path_params["agent_id"]
    common.enforce(request, "get_agent", {}, hide_missing=True)
    agent = agent_state.get_or_404(session, agent_id)
    return {RESOURCE: common.fields_wanted(request, agent_state.render(agent))}


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    agent_id = request.path_params["agent_id"]
    common.enforce(request, "get_agent", {}, hide_missing=True)
    item = A.body_of(request, RESOURCE)
    spec = A.parse(ATTRS, item, create=False, resource=RESOURCE)
    common.enforce(request, "update_agent", {}, ATTRS, item)
    agent = agent_state.get_or_404(session, agent_id)
    if "description" in spec:
        agent.description = spec["description"]
    if "admin_state_up" in spec and spec["admin_state_up"] != agent.admin_state_up:
        agent.admin_state_up = spec["admin_state_up"]
        # A disabled agent stops serving; an enabled one may take unhosted work.
        notify.nudge(session, "agent", agent.id, topic=agent_state.topic(agent))
        if agent.admin_state_up:
            agent_scheduling.auto_schedule_agent(session, agent)
    session.flush()
    return {RESOURCE: agent_state.render(agent)}


def delete(request: rest.ApiRequest, session: Session) -> None:
    agent_id = request.path_params["agent_id"]
    common.enforce(request, "get_agent", {}, hide_missing=True)
    common.enforce(request, "delete_agent", {})
    agent = agent_state.get_or_404(session, agent_id)
    # Its networks and routers bindings go with it (foreign keys cascade).
    session.delete(agent)
    notify.nudge(session, "agent", agent.id, topic=agent_state.topic(agent))


def create(request: rest.ApiRequest, session: Session) -> None:
    """Agents register themselves by heartbeat; the API cannot make one (as Neutron)."""
    A.parse(ATTRS, A.body_of(request, RESOURCE), create=True, resource=RESOURCE)
    raise errors.bad_request("Bad agents request: Agent creation using API is not supported.")


ROUTES = [
    rest.Route("POST", "/v2.0/agents", create, write=False),
    rest.Route("GET", "/v2.0/agents", list_agents),
    rest.Route("GET", "/v2.0/agents/{agent_id}", show),
    rest.Route("PUT", "/v2.0/agents/{agent_id}", update),
    rest.Route("DELETE", "/v2.0/agents/{agent_id}", delete),
    *agent_scheduler_api.ROUTES,
]
