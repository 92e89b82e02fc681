"""Port binding as ML2 with the Linux bridge mechanism driver does it, and the port
status agents report.

A port with ``binding:host_id`` is bound when a live Linux bridge agent on that
host can reach one of the network's segments: ``binding:vif_type`` "bridge" and
details naming the bridge (``brq<network id[:11]>``) and tap (``tap<port id[:11]>``)
the agent plugs. Otherwise it is "binding_failed"; without a host, "unbound".
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox.network import common, ml2, models, runtime

UNBOUND = "unbound"
FAILED = "binding_failed"
BRIDGE = "bridge"
UNPLUGGED = (UNBOUND, FAILED)
# The agent type the Linux bridge mechanism driver binds with (as Neutron names it).
L2_AGENT_TYPE = "Linux bridge agent"
STATUSES = ("ACTIVE", "DOWN", "BUILD", "ERROR", "N/A")


def bridge_name(network_id: str) -> str:
    return f"brq{network_id[:11]}"


def tap_name(port_id: str) -> str:
    return f"tap{port_id[:11]}"


def _alive(agent: models.Agent) -> bool:
    limit = datetime.timedelta(seconds=runtime.get().settings.agent_down_time)
    beat = agent.heartbeat_timestamp
    return beat is not None and common.now() - beat <= limit


def _reaches(agent: models.Agent, segment: models.Segment) -> bool:
    """Whether the agent's reported configuration serves the segment (lenient when the
    agent reports no mappings at all, like a fake agent)."""
    config: dict[str, Any] = agent.configurations or {}
    kind = segment.network_type
    if kind == "local":
        return True
    if kind in ("vxlan", "gre"):
        tunnels = config.get("tunnel_types")
        return tunnels is None or kind in tunnels
    mappings: dict[str, Any] = {}
    for key in ("interface_mappings", "bridge_mappings"):
        if isinstance(config.get(key), dict):
            mappings.update(config[key])
    if "interface_mappings" not in config and "bridge_mappings" not in config:
        return True
    return segment.physical_network in mappings


def bind(session: Session, port: models.Port) -> None:
    """Set vif_type and vif_details from the host, the vnic type and the agents."""
    host = port.binding_host_id
    if not host:
        port.binding_vif_type = UNBOUND
        port.binding_vif_details = {}
        return
    if port.binding_vnic_type != "normal":
        port.binding_vif_type = FAILED
        port.binding_vif_details = {}
        return
    agents = [
        a
        for a in session.scalars(
            select(models.Agent).where(
                models.Agent.host == host, models.Agent.agent_type == L2_AGENT_TYPE
            )
        )
        if _alive(a)
    ]
    segments = ml2.segments_of(session, [port.network_id])[port.network_id]
    for agent in agents:
        for segment in segments:
            if _reaches(agent, segment):
                port.binding_vif_type = BRIDGE
                port.binding_vif_details = {
                    "port_filter": True,
                    "connectivity": "l2",
                    "bridge_name": bridge_name(port.network_id),
                    "tap_name": tap_name(port.id),
                }
                return
    port.binding_vif_type = FAILED
    port.binding_vif_details = {}


def is_bound(port: models.Port) -> bool:
    return port.binding_vif_type not in UNPLUGGED


def set_status(session: Session, port_id: str, status: str) -> models.Port | None:
    """An agent's report: the port is ACTIVE (plugged and wired) or DOWN, BUILD, ERROR.

    Returns the port, or None when it no longer exists (a report that arrives after a
    delete). A change of status is a change of the resource (a new revision).
    """
    if status not in STATUSES:
        raise ValueError(f"unknown port status {status!r}")
    port = session.get(models.Port, port_id)
    if port is None:
        return None
    if port.status != status:
        port.status = status
        common.bump(port)
        session.flush()
    return port
