"""Nudges for agents: written to the outbox in the transaction of the change.

A nudge says only *what* changed ("network N", "port P"); agents then ask the
server for the desired state of what they host (level-based, DESIGN §5). The
controller's relay publishes outbox rows on the bus after commit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from stackbox.network import models

# Topic every network agent listens on; host-specific topics are "network.<host>".
BROADCAST = "network"


def nudge(session: Session, kind: str, ident: str, topic: str = BROADCAST, **extra: Any) -> None:
    """Queue ``{kind, id}`` for agents on ``topic`` (sent once the transaction commits)."""
    session.add(models.Outbox(topic=topic, message={"kind": kind, "id": ident, **extra}))


def network(session: Session, network_id: str) -> None:
    nudge(session, "network", network_id)


def port(session: Session, port: models.Port) -> None:
    topic = f"{BROADCAST}.{port.binding_host_id}" if port.binding_host_id else BROADCAST
    nudge(session, "port", port.id, topic=topic, network_id=port.network_id)


def router(session: Session, router_id: str) -> None:
    nudge(session, "router", router_id)


def security_group(session: Session, security_group_id: str) -> None:
    nudge(session, "security_group", security_group_id)
