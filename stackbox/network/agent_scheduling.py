"""Which DHCP agents serve a network and which L3 agents host a router.

Networks with a DHCP-enabled subnet get ``dhcp_agents_per_network`` DHCP agents;
every router gets an L3 agent (an HA router up to ``max_l3_agents_per_router``).
Only enabled, alive agents are chosen, the least loaded first, within the
resource's availability zone hints when it has some. A binding to an agent that
died stays (the agent may come back) until the DHCP failover sweep moves the
network elsewhere; routers stay where they are, as in Neutron by default.

The controller calls ``schedule_network``/``schedule_router`` for every nudge it
relays and ``auto_schedule_agent`` when an agent registers or comes back, so
work created while no agent was alive finds one later. Each new binding nudges
the agent's host.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stackbox.network import agent_state, common, models, notify, runtime

# L3 agent modes (the ``agent_mode`` of its configurations) that host routers only
# through their ports (DVR on compute nodes) and are never scheduled a router.
DVR_ONLY_MODES = ("dvr", "dvr_no_external")


def agent_mode(agent: models.Agent) -> str:
    return str((agent.configurations or {}).get("agent_mode", "legacy"))


def _load(session: Session, column: Any) -> dict[str, int]:
    """How many bindings each value of ``column`` has (agents' load, resources' hosts)."""
    return {
        key: count for key, count in session.execute(select(column, func.count()).group_by(column))
    }


def _candidates(
    agents: Iterable[models.Agent],
    load: dict[str, int],
    exclude: set[str],
    zones: list[str],
) -> list[models.Agent]:
    now = common.now()
    chosen = [
        a
        for a in agents
        if a.id not in exclude
        and agent_state.is_eligible(a, now)
        and (not zones or a.availability_zone in zones)
    ]
    chosen.sort(key=lambda a: (load.get(a.id, 0), a.host, a.id))
    return chosen


# --- DHCP -----------------------------------------------------------------------------------


def needs_dhcp(session: Session, network_id: str) -> bool:
    return (
        session.scalar(
            select(models.Subnet.id)
            .where(models.Subnet.network_id == network_id, models.Subnet.enable_dhcp.is_(True))
            .limit(1)
        )
        is not None
    )


def dhcp_agent_ids(session: Session, network_id: str) -> list[str]:
    return list(
        session.scalars(
            select(models.NetworkDhcpAgent.agent_id).where(
                models.NetworkDhcpAgent.network_id == network_id
            )
        )
    )


def bind_network(session: Session, network_id: str, agent: models.Agent) -> None:
    session.add(models.NetworkDhcpAgent(network_id=network_id, agent_id=agent.id))
    notify.nudge(session, "network", network_id, topic=agent_state.topic(agent))


def unbind_network(session: Session, network_id: str, agent: models.Agent) -> bool:
    removed = (
        session.query(models.NetworkDhcpAgent)
        .filter(
            models.NetworkDhcpAgent.network_id == network_id,
            models.NetworkDhcpAgent.agent_id == agent.id,
        )
        .delete()
    )
    if removed:
        notify.nudge(session, "network", network_id, topic=agent_state.topic(agent))
    return bool(removed)


def schedule_network(
    session: Session, network_id: str, *, apply: bool = True
) -> list[models.Agent]:
    """Give the network the DHCP agents it lacks; returns the agents newly chosen
    (with ``apply=False`` only chooses them, so a read transaction can ask)."""
    network = session.get(models.Network, network_id)
    if network is None or not needs_dhcp(session, network_id):
        return []
    hosted = set(dhcp_agent_ids(session, network_id))
    missing = runtime.get().settings.dhcp_agents_per_network - len(hosted)
    if missing <= 0:
        return []
    load = _load(session, models.NetworkDhcpAgent.agent_id)
    zones = list(network.availability_zone_hints or [])
    chosen = _candidates(agent_state.of_type(session, agent_state.DHCP), load, hosted, zones)
    chosen = chosen[:missing]
    if apply:
        for agent in chosen:
            bind_network(session, network_id, agent)
        session.flush()
    return chosen


def remove_networks_from_dead_agents(session: Session) -> list[tuple[str, str]]:
    """DHCP failover: networks of agents dead for twice ``agent_down_time`` move to live
    agents (only when a live one exists). Returns the (network, agent) bindings dropped."""
    if not runtime.get().settings.allow_automatic_dhcp_failover:
        return []
    now = common.now()
    agents = agent_state.of_type(session, agent_state.DHCP)
    if not any(agent_state.is_eligible(a, now) for a in agents):
        return []
    limit = 2 * agent_state.down_time()
    dead = [
        a for a in agents if a.heartbeat_timestamp is None or now - a.heartbeat_timestamp > limit
    ]
    dropped: list[tuple[str, str]] = []
    for agent in dead:
        for network_id in list(
            session.scalars(
                select(models.NetworkDhcpAgent.network_id).where(
                    models.NetworkDhcpAgent.agent_id == agent.id
                )
            )
        ):
            unbind_network(session, network_id, agent)
            dropped.append((network_id, agent.id))
    session.flush()
    for network_id in {n for n, _ in dropped}:
        schedule_network(session, network_id)
    return dropped


# --- L3 -------------------------------------------------------------------------------------


def l3_agent_ids(session: Session, router_id: str) -> list[str]:
    return list(
        session.scalars(
            select(models.RouterL3Agent.agent_id).where(models.RouterL3Agent.router_id == router_id)
        )
    )


def can_host(agent: models.Agent, router: models.Router) -> bool:
    """Whether the L3 agent's mode may be scheduled this router (Neutron's rules)."""
    mode = agent_mode(agent)
    if mode in DVR_ONLY_MODES:
        return False
    return not (router.distributed and mode == "legacy")


def bind_router(session: Session, router_id: str, agent: models.Agent) -> None:
    session.add(models.RouterL3Agent(router_id=router_id, agent_id=agent.id))
    notify.nudge(session, "router", router_id, topic=agent_state.topic(agent))


def unbind_router(session: Session, router_id: str, agent: models.Agent) -> bool:
    removed = (
        session.query(models.RouterL3Agent)
        .filter(
            models.RouterL3Agent.router_id == router_id,
            models.RouterL3Agent.agent_id == agent.id,
        )
        .delete()
    )
    if removed:
        notify.nudge(session, "router", router_id, topic=agent_state.topic(agent))
    return bool(removed)


def schedule_router(session: Session, router_id: str, *, apply: bool = True) -> list[models.Agent]:
    """Give the router the L3 agents it lacks; returns the agents newly chosen
    (with ``apply=False`` only chooses them)."""
    router = session.get(models.Router, router_id)
    if router is None:
        return []
    hosted = set(l3_agent_ids(session, router_id))
    settings = runtime.get().settings
    missing = (settings.max_l3_agents_per_router if router.ha else 1) - len(hosted)
    if missing <= 0:
        return []
    load = _load(session, models.RouterL3Agent.agent_id)
    zones = list(router.availability_zone_hints or [])
    agents = [a for a in agent_state.of_type(session, agent_state.L3) if can_host(a, router)]
    chosen = _candidates(agents, load, hosted, zones)[:missing]
    if apply:
        for agent in chosen:
            bind_router(session, router_id, agent)
        session.flush()
    return chosen


# --- agents arriving ------------------------------------------------------------------------


def schedule_unhosted_networks(session: Session) -> None:
    """Networks needing DHCP with fewer agents than they should have: place them."""
    per_network = runtime.get().settings.dhcp_agents_per_network
    hosted = _load(session, models.NetworkDhcpAgent.network_id)
    for network_id in list(
        session.scalars(
            select(models.Subnet.network_id).where(models.Subnet.enable_dhcp.is_(True)).distinct()
        )
    ):
        if hosted.get(network_id, 0) < per_network:
            schedule_network(session, network_id)


def schedule_unhosted_routers(session: Session) -> None:
    """Routers with fewer L3 agents than they should have: place them."""
    per_ha_router = runtime.get().settings.max_l3_agents_per_router
    hosted = _load(session, models.RouterL3Agent.router_id)
    for router_id, ha in list(session.execute(select(models.Router.id, models.Router.ha))):
        if hosted.get(router_id, 0) < (per_ha_router if ha else 1):
            schedule_router(session, router_id)


def auto_schedule_agent(session: Session, agent: models.Agent) -> None:
    """Place what is unhosted now that ``agent`` can take work (Neutron's
    auto_schedule_networks / auto_schedule_routers on an agent's first sync)."""
    if not agent_state.is_eligible(agent):
        return
    if agent.agent_type == agent_state.DHCP:
        schedule_unhosted_networks(session)
    elif agent.agent_type == agent_state.L3:
        schedule_unhosted_routers(session)


# --- zones of what is placed ----------------------------------------------------------------


def _zones(session: Session, binding: Any, column: Any, ids: list[str]) -> dict[str, list[str]]:
    found: dict[str, set[str]] = {i: set() for i in ids}
    for start in range(0, len(ids), 500):
        for resource_id, zone in session.execute(
            select(column, models.Agent.availability_zone)
            .join(models.Agent, models.Agent.id == binding.agent_id)
            .where(column.in_(ids[start : start + 500]))
        ):
            if zone:
                found[resource_id].add(zone)
    return {i: sorted(zones) for i, zones in found.items()}


def network_zones(session: Session, network_ids: list[str]) -> dict[str, list[str]]:
    """Each network's ``availability_zones``: the zones of the DHCP agents serving it."""
    return _zones(session, models.NetworkDhcpAgent, models.NetworkDhcpAgent.network_id, network_ids)


def router_zones(session: Session, router_ids: list[str]) -> dict[str, list[str]]:
    """Each router's ``availability_zones``: the zones of the L3 agents hosting it."""
    return _zones(session, models.RouterL3Agent, models.RouterL3Agent.router_id, router_ids)
