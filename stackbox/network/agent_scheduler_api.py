"""Neutron's ``dhcp_agent_scheduler`` and ``l3_agent_scheduler`` extensions: admins see
and change which DHCP agents serve a network and which L3 agents host a router.

- ``GET/POST /v2.0/agents/{id}/dhcp-networks``, ``DELETE .../dhcp-networks/{network_id}``
- ``GET /v2.0/networks/{id}/dhcp-agents``
- ``GET/POST /v2.0/agents/{id}/l3-routers``, ``DELETE .../l3-routers/{router_id}``
- ``GET /v2.0/routers/{id}/l3-agents``

POST bodies are bare (``{"network_id": ...}``), and POST answers 201 with no body.
Each change nudges the agent's host, which then re-reads what it serves.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.network import agent_scheduling, agent_state, common, errors, models, networks
from stackbox.network import attributes as A
from stackbox.network import routers as routers_api

DHCP_BODY = A.spec(A.Attr("network_id", post=True, default=A.MISSING, validate=A.uuid_string))
L3_BODY = A.spec(
    A.Attr("router_id", post=True, default=A.MISSING, validate=A.uuid_string),
    # Only OVN's scheduler uses it; accepted and ignored, as Neutron's L3 scheduler does.
    A.Attr("ha_chassis_priority", post=True, default=None),
)


def _body(request: rest.ApiRequest, attrs: dict[str, A.Attr]) -> dict[str, Any]:
    if not isinstance(request.body, dict):
        raise errors.bad_request("Resource body required")
    return A.parse(attrs, request.body, create=True, resource="agent")


def _invalid_agent(agent_id: str, kind: str) -> rest.NotFound:
    if kind == "dhcp":
        message = f"Agent {agent_id} is not a valid DHCP Agent or has been disabled."
        return errors.not_found("InvalidDHCPAgent", message)
    return errors.not_found(
        "InvalidL3Agent", f"Agent {agent_id} is not a L3 Agent or has been disabled"
    )


# --- DHCP agents and networks ---------------------------------------------------------------


def list_dhcp_networks(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, "get_dhcp-networks", {})
    agent = agent_state.get_or_404(session, request.path_params["agent_id"])
    rows = list(
        session.scalars(
            select(models.Network)
            .join(models.NetworkDhcpAgent, models.NetworkDhcpAgent.network_id == models.Network.id)
            .where(models.NetworkDhcpAgent.agent_id == agent.id)
            .order_by(models.Network.id)
        )
    )
    return {"networks": networks.render_many(session, rows)}


def add_dhcp_network(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    common.enforce(request, "create_dhcp-network", {})
    spec = _body(request, DHCP_BODY)
    network_id = spec["network_id"]
    if session.get(models.Network, network_id) is None:
        raise errors.resource_not_found("network", network_id)
    agent = agent_state.get_or_404(session, request.path_params["agent_id"])
    if agent.agent_type != agent_state.DHCP or not agent.admin_state_up:
        raise _invalid_agent(agent.id, "dhcp")
    if agent.id in agent_scheduling.dhcp_agent_ids(session, network_id):
        raise errors.conflict(
            "NetworkHostedByDHCPAgent",
            f"The network {network_id} has been already hosted by the DHCP Agent {agent.id}.",
        )
    agent_scheduling.bind_network(session, network_id, agent)
    return rest.ApiResponse(201)


def remove_dhcp_network(request: rest.ApiRequest, session: Session) -> None:
    common.enforce(request, "delete_dhcp-network", {})
    agent = agent_state.get_or_404(session, request.path_params["agent_id"])
    network_id = request.path_params["network_id"]
    if not agent_scheduling.unbind_network(session, network_id, agent):
        raise errors.conflict(
            "NetworkNotHostedByDhcpAgent",
            f"The network {network_id} is not hosted by the DHCP Agent {agent.id}.",
        )


def list_network_dhcp_agents(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, "get_dhcp-agents", {})
    ids = agent_scheduling.dhcp_agent_ids(session, request.path_params["network_id"])
    return {"agents": _agents(session, ids)}


def _agents(session: Session, ids: list[str]) -> list[dict[str, Any]]:
    if not ids:
        return []
    now = common.now()
    rows = session.scalars(
        select(models.Agent).where(models.Agent.id.in_(ids)).order_by(models.Agent.id)
    )
    return [agent_state.render(a, now) for a in rows]


# --- L3 agents and routers ------------------------------------------------------------------


def list_l3_routers(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, "get_l3-routers", {})
    agent = agent_state.get_or_404(session, request.path_params["agent_id"])
    rows = list(
        session.scalars(
            select(models.Router)
            .join(models.RouterL3Agent, models.RouterL3Agent.router_id == models.Router.id)
            .where(models.RouterL3Agent.agent_id == agent.id)
            .order_by(models.Router.id)
        )
    )
    return {"routers": routers_api.render_many(session, rows)}


def add_l3_router(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    common.enforce(request, "create_l3-router", {})
    spec = _body(request, L3_BODY)
    router_id = spec["router_id"]
    router = session.get(models.Router, router_id)
    if router is None:
        raise errors.resource_not_found("router", router_id)
    agent = agent_state.get_or_404(session, request.path_params["agent_id"])
    if agent.agent_type != agent_state.L3:
        raise _invalid_agent(agent.id, "l3")
    mode = agent_scheduling.agent_mode(agent)
    if mode in agent_scheduling.DVR_ONLY_MODES:
        raise errors.conflict(
            "DVRL3CannotAssignToDvrAgent",
            "Not allowed to manually assign a router to an agent in 'dvr' mode.",
        )
    if mode == "legacy" and router.distributed:
        raise errors.conflict(
            "RouterL3AgentMismatch",
            f"Cannot host distributed router {router.id} on legacy L3 agent {agent.id}.",
        )
    if not agent.admin_state_up:
        raise _invalid_agent(agent.id, "l3")
    hosted = agent_scheduling.l3_agent_ids(session, router.id)
    if agent.id in hosted:
        return rest.ApiResponse(201)
    if hosted and not router.ha:
        raise errors.conflict(
            "RouterHostedByL3Agent",
            f"The router {router.id} has been already hosted by the L3 Agent {hosted[0]}.",
        )
    agent_scheduling.bind_router(session, router.id, agent)
    return rest.ApiResponse(201)


def remove_l3_router(request: rest.ApiRequest, session: Session) -> None:
    common.enforce(request, "delete_l3-router", {})
    agent = agent_state.get_or_404(session, request.path_params["agent_id"])
    if agent_scheduling.agent_mode(agent) in agent_scheduling.DVR_ONLY_MODES:
        raise errors.conflict(
            "DVRL3CannotRemoveFromDvrAgent",
            "Not allowed to manually remove a router from an agent in 'dvr' mode.",
        )
    router_id = request.path_params["router_id"]
    agent_scheduling.unbind_router(session, router_id, agent)
    # As Neutron: removing a router the agent did not host is not an error, a missing one is.
    if session.get(models.Router, router_id) is None:
        raise errors.resource_not_found("router", router_id)


def list_router_l3_agents(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, "get_l3-agents", {})
    ids = agent_scheduling.l3_agent_ids(session, request.path_params["router_id"])
    return {"agents": _agents(session, ids)}


ROUTES = [
    rest.Route("GET", "/v2.0/agents/{agent_id}/dhcp-networks", list_dhcp_networks),
    rest.Route("POST", "/v2.0/agents/{agent_id}/dhcp-networks", add_dhcp_network),
    rest.Route("DELETE", "/v2.0/agents/{agent_id}/dhcp-networks/{network_id}", remove_dhcp_network),
    rest.Route("GET", "/v2.0/networks/{network_id}/dhcp-agents", list_network_dhcp_agents),
    rest.Route("GET", "/v2.0/agents/{agent_id}/l3-routers", list_l3_routers),
    rest.Route("POST", "/v2.0/agents/{agent_id}/l3-routers", add_l3_router),
    rest.Route("DELETE", "/v2.0/agents/{agent_id}/l3-routers/{router_id}", remove_l3_router),
    rest.Route("GET", "/v2.0/routers/{router_id}/l3-agents", list_router_l3_agents),
]
