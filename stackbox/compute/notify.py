"""Nudges for compute agents: written to the outbox in the transaction of the change.

A nudge names the server and nothing else ("server S changed"); the agent of its
host asks the controller for the desired state (DESIGN §4). Compute nudges share
the networking outbox table and its relay (``controller.relay``), which publishes
rows on their topic after commit.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from stackbox.network import notify as network_notify

# Every compute agent hears "compute"; the agent of one host hears "compute.<host>".
BROADCAST = "compute"


def host_topic(host: str) -> str:
    return f"{BROADCAST}.{host}"


def server(session: Session, server_id: str, host: str | None) -> None:
    """Tell the agent of ``host`` (every agent when unplaced) that the server changed."""
    topic = host_topic(host) if host else BROADCAST
    network_notify.nudge(session, "server", server_id, topic=topic)
