"""The ports DHCP agents serve networks from (Neutron's create_dhcp_port /
release_dhcp_port): one per network and serving host, owned ``network:dhcp``,
bound to that host, with an address on each IPv4 subnet that has DHCP on.

Made on the agent's request rather than when a network is scheduled, as in
Neutron: only an agent that really serves DHCP needs one (the fake agent does
not ask, so API-only clouds hand out no addresses to DHCP servers).
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import context
from stackbox.bus import messages
from stackbox.controller import desired
from stackbox.network import models, port_rows

OWNER = "network:dhcp"


def device_id(host: str, network_id: str) -> str:
    """Neutron's form: dhcp<host uuid>-<network id>."""
    return f"dhcp{uuid.uuid5(uuid.NAMESPACE_DNS, host)}-{network_id}"


def _context() -> context.RequestContext:
    return context.RequestContext(
        request_id=f"req-{uuid.uuid4()}", user_id="stackbox-dhcp", roles=("admin",)
    )


def _find(session: Session, host: str, network_id: str) -> models.Port | None:
    return session.scalars(
        select(models.Port).where(
            models.Port.network_id == network_id,
            models.Port.device_owner == OWNER,
            models.Port.device_id == device_id(host, network_id),
        )
    ).first()


def _dhcp_subnets(session: Session, network_id: str) -> list[models.Subnet]:
    return list(
        session.scalars(
            select(models.Subnet)
            .where(
                models.Subnet.network_id == network_id,
                models.Subnet.enable_dhcp.is_(True),
                models.Subnet.ip_version == 4,
            )
            .order_by(models.Subnet.created_at, models.Subnet.id)
        )
    )


def ensure(session: Session, host: str, network_id: str) -> messages.DhcpPort:
    network = session.get(models.Network, network_id)
    subnets = _dhcp_subnets(session, network_id) if network is not None else []
    if network is None or not subnets:
        return messages.DhcpPort(network_id)
    port = _find(session, host, network_id)
    wanted = [{"subnet_id": s.id} for s in subnets]
    ctx = _context()
    if port is None:
        spec = {
            "device_owner": OWNER,
            "device_id": device_id(host, network_id),
            "binding:host_id": host,
            "fixed_ips": wanted,
            "name": "",
        }
        port = port_rows.create(
            session, ctx, network, spec, project_id=network.project_id, check_quota=False
        )
    else:
        held = set(
            session.scalars(
                select(models.IPAllocation.subnet_id).where(models.IPAllocation.port_id == port.id)
            )
        )
        missing = [w for w in wanted if w["subnet_id"] not in held]
        if missing or port.binding_host_id != host:
            kept = [
                {"subnet_id": a.subnet_id, "ip_address": a.ip_address}
                for a in session.scalars(
                    select(models.IPAllocation).where(models.IPAllocation.port_id == port.id)
                )
            ]
            port_rows.update(
                session, ctx, port, {"fixed_ips": kept + missing, "binding:host_id": host}
            )
    return messages.DhcpPort(network_id, desired.port_specs(session, [port])[0])


def release(session: Session, host: str, network_id: str) -> messages.DhcpPort:
    port = _find(session, host, network_id)
    if port is not None:
        port_rows.delete(session, port)
    return messages.DhcpPort(network_id)
