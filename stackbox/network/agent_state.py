"""What the server knows of an agent: liveness from its heartbeats, and its API view.

Shared by the agents API, the agent schedulers and the controller's intake.
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox.network import common, errors, models, notify, runtime

RESOURCE = "agent"

# Agent types as Neutron names them (the fake and the Linux agents report these).
L2_LINUX_BRIDGE = "Linux bridge agent"
DHCP = "DHCP agent"
L3 = "L3 agent"
METADATA = "Metadata agent"


def timestamp(moment: datetime.datetime | None) -> str | None:
    """Neutron shows agents' times as ``2017-09-12 19:39:56`` (no T, no zone)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else None


def down_time() -> datetime.timedelta:
    return datetime.timedelta(seconds=runtime.get().settings.agent_down_time)


def is_alive(agent: models.Agent, now: datetime.datetime | None = None) -> bool:
    """Whether the agent has heartbeated within ``agent_down_time`` seconds."""
    moment = now or common.now()
    beat = agent.heartbeat_timestamp
    return beat is not None and moment - beat <= down_time()


def is_eligible(agent: models.Agent, now: datetime.datetime | None = None) -> bool:
    """Whether new work may go to the agent: enabled and alive."""
    return agent.admin_state_up and is_alive(agent, now)


def find(session: Session, agent_type: str, host: str) -> models.Agent | None:
    """The agent of ``agent_type`` on ``host`` (alive or not), if one ever reported."""
    return session.scalars(
        select(models.Agent).where(models.Agent.agent_type == agent_type, models.Agent.host == host)
    ).first()


def of_type(session: Session, agent_type: str) -> list[models.Agent]:
    return list(
        session.scalars(
            select(models.Agent)
            .where(models.Agent.agent_type == agent_type)
            .order_by(models.Agent.host, models.Agent.id)
        )
    )


def get_or_404(session: Session, agent_id: str) -> models.Agent:
    agent = session.get(models.Agent, agent_id)
    if agent is None:
        raise errors.resource_not_found(RESOURCE, agent_id)
    return agent


def topic(agent: models.Agent) -> str:
    """Where the agents of ``agent``'s host listen for nudges (``network.<host>``)."""
    return f"{notify.BROADCAST}.{agent.host}"


def render(agent: models.Agent, now: datetime.datetime | None = None) -> dict[str, Any]:
    return {
        "id": agent.id,
        "agent_type": agent.agent_type,
        "binary": agent.binary,
        "topic": agent.topic,
        "host": agent.host,
        "admin_state_up": agent.admin_state_up,
        "created_at": timestamp(agent.created_at),
        "started_at": timestamp(agent.started_at),
        "heartbeat_timestamp": timestamp(agent.heartbeat_timestamp),
        "alive": is_alive(agent, now),
        "configurations": dict(agent.configurations or {}),
        "description": agent.description,
        "availability_zone": agent.availability_zone,
        "resources_synced": agent.resources_synced,
        "resource_versions": {},
    }
