"""Compute hosts for tests of the host APIs, and an HTTP client for the compute API.

STAND-IN: ``register_host`` plays another node's compute agent: it records one
heartbeat through ``compute.hosts.record_heartbeat`` (what the controller does with
an agent's report) on the cloud's database, and can age it to make a host that
went quiet. It exists only so the host APIs (services, hypervisors, zones,
aggregates) can be tested with several hosts, some of them down; the all-in-one's
own agent registers its host by itself, and servers and everything else go through
the API.
"""

from __future__ import annotations

import datetime
from typing import Any

import httpx
from sqlalchemy import select

from stackbox.bus import compute_messages, compute_specs
from stackbox.compute import hosts, models
from stackbox.db import session as db_session
from tests import cloudfixture


def database(cloud: cloudfixture.Cloud) -> db_session.Database:
    return db_session.Database(f"sqlite:///{cloud.state_dir / 'stackbox.db'}")


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def register_host(
    db: db_session.Database,
    host: str,
    *,
    seen: datetime.datetime | None = None,
    vcpus: int = 8,
    memory_mb: int = 16384,
    local_gb: int = 200,
    binary: str = "nova-compute",
    host_ip: str = "192.0.2.10",
) -> dict[str, Any]:
    """STAND-IN for another node's agent: one heartbeat through the controller's own
    ``hosts.record_heartbeat``. ``seen`` then ages it (a host whose agent went quiet)."""
    report = None
    if binary == compute_messages.BINARY:
        report = compute_specs.HypervisorReport(
            hypervisor_hostname=f"{host}.example",
            vcpus=vcpus,
            memory_mb=memory_mb,
            local_gb=local_gb,
            cpu_info={"arch": "x86_64", "model": "fake"},
            host_ip=host_ip,
        )
    beat = compute_messages.ComputeHeartbeat(
        host=host, binary=binary, hypervisor=report, start_flag=True
    )

    def write(session: Any) -> dict[str, Any]:
        hosts.record_heartbeat(session, beat)
        service = hosts.find_service(session, host, binary)
        assert service is not None
        if seen is not None:
            service.last_seen_up = service.updated_at = seen
        node = session.scalar(
            select(models.ComputeNode).where(models.ComputeNode.service_id == service.id)
        )
        return {
            "service_id": service.id,
            "service_uuid": service.uuid,
            "node_uuid": node.uuid if node else None,
        }

    return db.run(write, write=True)


def api(cloud: cloudfixture.Cloud, version: str = "2.1", **token: Any) -> httpx.Client:
    """A client of /compute/v2.1 at ``version`` as admin, or as ``token``'s user."""
    return httpx.Client(
        base_url=cloud.base_url + "/compute/v2.1",
        headers={
            "X-Auth-Token": cloud.token(**token) if token else cloud.token(),
            "OpenStack-API-Version": f"compute {version}",
        },
        timeout=30,
    )


def at(client: httpx.Client, version: str) -> dict[str, str]:
    """Headers asking for another microversion on one request."""
    return {"OpenStack-API-Version": f"compute {version}"}
