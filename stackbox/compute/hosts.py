"""Compute hosts as their agents report them: the nova-compute service row and its
compute node (the hypervisor), written by each heartbeat (``ComputeHeartbeat``).

A new host is registered enabled (Nova's ``enable_new_services``); a known one
has ``last_seen_up`` refreshed, which is what ``is_up`` judges. What an operator
set (disabled, forced down) is never touched by a heartbeat, and is sent back in
the answer. The node's allocation ratios come from ``ComputeSettings`` when the
node is made and again when its agent (re)starts, so a changed setting applies
after a restart and never flips under running claims.
"""

from __future__ import annotations

import datetime
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox.bus import compute_messages, compute_specs, messages
from stackbox.compute import common, liveness, models, runtime

LOG = logging.getLogger(__name__)


def find_service(
    session: Session, host: str, binary: str = compute_messages.BINARY
) -> models.Service | None:
    return session.scalars(
        select(models.Service).where(models.Service.host == host, models.Service.binary == binary)
    ).first()


def is_up(service: models.Service, now: datetime.datetime | None = None) -> bool:
    """Reported within ``service_down_time`` and not forced down."""
    down_time = runtime.get().settings.service_down_time
    return liveness.is_up(service, now or common.now(), down_time)


def host_is_up(session: Session, host: str, now: datetime.datetime | None = None) -> bool:
    service = find_service(session, host)
    return service is not None and is_up(service, now)


def record_heartbeat(
    session: Session, beat: compute_messages.ComputeHeartbeat
) -> compute_messages.ComputeHeartbeatAck:
    now = common.now()
    service = find_service(session, beat.host, beat.binary)
    if service is None:
        service = models.Service(
            uuid=common.new_id(),
            host=beat.host,
            binary=beat.binary,
            disabled=False,
            forced_down=False,
            created_at=now,
        )
        session.add(service)
        status = messages.AGENT_NEW
    else:
        status = messages.AGENT_ALIVE if is_up(service, now) else messages.AGENT_REVIVED
    service.topic = beat.topic
    service.report_interval = beat.report_interval
    service.last_seen_up = now
    service.updated_at = now
    session.flush()
    if beat.hypervisor is not None:
        _record_node(session, service, beat.hypervisor, fresh=beat.start_flag, now=now)
    if status != messages.AGENT_ALIVE:
        level = logging.INFO if status == messages.AGENT_REVIVED else logging.DEBUG
        LOG.log(level, "nova-compute on %s is %s", beat.host, status)
    return compute_messages.ComputeHeartbeatAck(
        service_id=service.uuid,
        status=status,
        disabled=service.disabled,
        disabled_reason=service.disabled_reason,
        forced_down=service.forced_down,
    )


def _record_node(
    session: Session,
    service: models.Service,
    report: compute_specs.HypervisorReport,
    *,
    fresh: bool,
    now: datetime.datetime,
) -> models.ComputeNode:
    node = session.scalars(
        select(models.ComputeNode).where(
            models.ComputeNode.hypervisor_hostname == report.hypervisor_hostname
        )
    ).first()
    if node is not None and node.host != service.host:
        # The hypervisor moved to another host (re-installed under a new name): follow it.
        LOG.warning(
            "hypervisor %s now reports from %s (was %s)",
            report.hypervisor_hostname,
            service.host,
            node.host,
        )
    if node is None:
        node = models.ComputeNode(
            uuid=common.new_id(),
            hypervisor_hostname=report.hypervisor_hostname,
            created_at=now,
        )
        session.add(node)
        fresh = True
    settings = runtime.get().settings
    if fresh:
        node.cpu_allocation_ratio = settings.cpu_allocation_ratio
        node.ram_allocation_ratio = settings.ram_allocation_ratio
        node.disk_allocation_ratio = settings.disk_allocation_ratio
    node.service_id = service.id
    node.host = service.host
    node.hypervisor_type = report.hypervisor_type
    node.hypervisor_version = report.hypervisor_version
    node.host_ip = report.host_ip
    node.vcpus = report.vcpus
    node.memory_mb = report.memory_mb
    node.local_gb = report.local_gb
    node.cpu_info = dict(report.cpu_info)
    node.supported_instances = [list(item) for item in report.supported_instances]
    node.updated_at = now
    session.flush()
    return node


# The controller's own roles, listed by os-services / os-hosts as Nova lists its
# conductor (agents reach the database only through it, as stackbox's agents reach the
# controller's RPC) and its scheduler (which stackbox runs inside the API's create).
CONTROL_BINARIES = (("nova-conductor", "conductor"), ("nova-scheduler", "scheduler"))


def record_control_services(session: Session, host: str, report_interval: float) -> None:
    """The controller's heartbeat for its nova-conductor and nova-scheduler rows."""
    now = common.now()
    for binary, topic in CONTROL_BINARIES:
        service = find_service(session, host, binary)
        if service is None:
            service = models.Service(
                uuid=common.new_id(),
                host=host,
                binary=binary,
                topic=topic,
                disabled=False,
                forced_down=False,
                created_at=now,
            )
            session.add(service)
        service.last_seen_up = now
        service.updated_at = now
        service.report_interval = report_interval
