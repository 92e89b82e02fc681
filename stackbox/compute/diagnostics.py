"""``GET /servers/{id}/diagnostics`` (admin): what the hypervisor knows of a running
server; from 2.48 in Nova's standard format, before it in the driver's own
(libvirt-style flat counters).

The fake driver keeps no live statistics: the answer is built from what stackbox
knows of the server (its flavor's vCPUs, memory and disks, its ports' MAC addresses,
its host's hypervisor type, how long ago it was launched), and its guest, which runs
nothing, has used no CPU time and moved no bytes: those counters are zero. Nova's
diagnostics name the driver among the five Nova has (its own fake driver says
``libvirt``, which is what stackbox says too). As in Nova, a server not placed on a
host yet is 409 (not ready), and one that is not running is 409 (its power state).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import common, errors, microversions, models, states
from stackbox.network import models as net

# Nova's power_state.STATE_MAP names.
POWER = {
    states.NOSTATE: "pending",
    states.RUNNING: "running",
    states.POWER_PAUSED: "paused",
    states.SHUTDOWN: "shutdown",
    states.CRASHED: "crashed",
    states.POWER_SUSPENDED: "suspended",
}
DRIVER = "libvirt"
NIC_COUNTERS = (
    "rx_octets",
    "rx_errors",
    "rx_drop",
    "rx_packets",
    "rx_rate",
    "tx_octets",
    "tx_errors",
    "tx_drop",
    "tx_packets",
    "tx_rate",
)


def _macs(session: Session, server: models.Server) -> list[tuple[str, str]]:
    """(port id, MAC) of the server's ports, in port order."""
    P = net.Port
    rows = session.execute(
        select(P.id, P.mac_address).where(P.device_id == server.id).order_by(P.created_at, P.id)
    )
    return [(port_id, mac) for port_id, mac in rows]


def _disks(flavor: dict[str, Any]) -> list[str]:
    """The guest's disks as the flavor makes them: root, then ephemeral and swap if any."""
    disks = ["vda"]
    for size in ("ephemeral_gb", "swap"):
        if int(flavor.get(size) or 0) > 0:
            disks.append(f"vd{chr(ord('a') + len(disks))}")
    return disks


def _hypervisor(session: Session, server: models.Server) -> str | None:
    N = models.ComputeNode
    query = select(N.hypervisor_type).where(N.host == server.host)
    if server.node:
        query = query.where(N.hypervisor_hostname == server.node)
    return session.scalars(query.limit(1)).first()


def standard(session: Session, server: models.Server) -> dict[str, Any]:
    """Nova's 2.48 body."""
    flavor = server.flavor or {}
    vcpus = int(flavor.get("vcpus") or 0)
    macs = _macs(session, server)
    disks = _disks(flavor)
    uptime = None
    if server.launched_at is not None:
        uptime = max(0, int((common.now() - server.launched_at).total_seconds()))
    return {
        "state": POWER.get(server.power_state, "pending"),
        "driver": DRIVER,
        "hypervisor": _hypervisor(session, server),
        "hypervisor_os": None,
        "uptime": uptime,
        "config_drive": bool(server.config_drive),
        "num_cpus": vcpus,
        "num_nics": len(macs),
        "num_disks": len(disks),
        "memory_details": {"maximum": int(flavor.get("memory_mb") or 0), "used": 0},
        "cpu_details": [{"id": i, "time": 0, "utilisation": 0} for i in range(vcpus)],
        "nic_details": [{"mac_address": mac, **dict.fromkeys(NIC_COUNTERS, 0)} for _, mac in macs],
        "disk_details": [
            {
                "read_bytes": 0,
                "read_requests": 0,
                "write_bytes": 0,
                "write_requests": 0,
                "errors_count": 0,
            }
            for _ in disks
        ],
    }


def legacy(session: Session, server: models.Server) -> dict[str, Any]:
    """The driver's own flat counters (before 2.48), named as libvirt names them."""
    flavor = server.flavor or {}
    body: dict[str, Any] = {f"cpu{i}_time": 0 for i in range(int(flavor.get("vcpus") or 0))}
    body["memory"] = int(flavor.get("memory_mb") or 0) * 1024
    for disk in _disks(flavor):
        for counter in ("read_req", "read", "write_req", "write", "errors"):
            body[f"{disk}_{counter}"] = 0
    for port_id, _ in _macs(session, server):
        tap = f"tap{port_id[:11]}"
        for counter in ("rx", "rx_drop", "rx_errors", "rx_packets"):
            body[f"{tap}_{counter}"] = 0
        for counter in ("tx", "tx_drop", "tx_errors", "tx_packets"):
            body[f"{tap}_{counter}"] = 0
    return body


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    server = common.get_server(session, request, request.path_params["server_id"])
    common.enforce(
        request, "os_compute_api:os-server-diagnostics", {"project_id": server.project_id}
    )
    if not server.host:
        raise errors.conflict(f"Instance {server.id} is not ready")
    if server.power_state != states.RUNNING:
        raise errors.invalid_state(
            server.id, "power state", POWER.get(server.power_state, "pending"), "get_diagnostics"
        )
    if microversions.at_least(request, "diagnostics_standard"):
        return standard(session, server)
    return legacy(session, server)


ROUTES: list[rest.Route] = [
    rest.Route("GET", "/v2.1/servers/{server_id}/diagnostics", show),
]
