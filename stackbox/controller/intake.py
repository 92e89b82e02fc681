"""What agents report: heartbeats become ``net_agent`` rows, port observations become
port status (through the ports' own ``set_status``).

A heartbeat registers a new agent (enabled, as Neutron's enable_new_agents) or
refreshes a known one, and answers whether the controller saw it as new, alive
or revived. A new or revived agent may take unhosted networks and routers, and a
Linux bridge agent coming up binds the ports of its host whose binding failed
while it was away.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox.bus import messages
from stackbox.network import (
    agent_scheduling,
    agent_state,
    common,
    models,
    notify,
    port_bindings,
    ports,
)

LOG = logging.getLogger(__name__)


def record_heartbeat(session: Session, beat: messages.Heartbeat) -> messages.HeartbeatAck:
    now = common.now()
    agent = agent_state.find(session, beat.agent_type, beat.host)
    if agent is None:
        agent = models.Agent(
            id=common.new_id(),
            agent_type=beat.agent_type,
            host=beat.host,
            admin_state_up=True,
            created_at=now,
            started_at=now,
        )
        session.add(agent)
        status = messages.AGENT_NEW
    else:
        status = (
            messages.AGENT_ALIVE if agent_state.is_alive(agent, now) else messages.AGENT_REVIVED
        )
        if beat.start_flag:
            agent.started_at = now
    agent.binary = beat.binary
    agent.topic = beat.topic
    agent.availability_zone = beat.availability_zone
    agent.configurations = dict(beat.configurations)
    agent.heartbeat_timestamp = now
    session.flush()
    if status != messages.AGENT_ALIVE:
        level = logging.INFO if status == messages.AGENT_REVIVED else logging.DEBUG
        LOG.log(level, "%s on %s is %s", beat.agent_type, beat.host, status)
        agent_scheduling.auto_schedule_agent(session, agent)
        if agent.agent_type == agent_state.L2_LINUX_BRIDGE:
            rebind_failed_ports(session, agent.host)
    return messages.HeartbeatAck(agent.id, status, agent.admin_state_up)


def rebind_failed_ports(session: Session, host: str) -> None:
    """Ports bound to ``host`` while it had no live L2 agent: bind them now."""
    for port in session.scalars(
        select(models.Port).where(
            models.Port.binding_host_id == host,
            models.Port.binding_vif_type == port_bindings.FAILED,
        )
    ):
        port_bindings.bind(session, port)
        if port_bindings.is_bound(port):
            common.bump(port)
            notify.port(session, port)
    session.flush()


def record_port_status(
    session: Session, report: messages.ReportPortStatus
) -> messages.PortStatusAck:
    """Record what the agent on ``report.host`` saw, for ports still bound there."""
    updated: list[str] = []
    unknown: list[str] = []
    for item in report.ports:
        port = session.get(models.Port, item.port_id)
        if port is None or port.binding_host_id != report.host:
            unknown.append(item.port_id)
            continue
        if item.status not in port_bindings.STATUSES:
            LOG.warning(
                "agent on %s reported port %s as %r; ignored", report.host, port.id, item.status
            )
            continue
        ports.set_status(session, port.id, item.status)
        updated.append(port.id)
    return messages.PortStatusAck(tuple(updated), tuple(unknown))
