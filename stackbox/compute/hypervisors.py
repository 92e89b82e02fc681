"""Hypervisors (``os-hypervisors``): the compute nodes the agents registered, with what
is claimed of them.

Totals (vcpus, memory_mb, local_gb) are what the node reported; the used figures
are the sums of the ``compute_allocation`` claims on the node (a resize holds two),
``running_vms`` counts the servers placed on it, ``current_workload`` those with
work in progress. From 2.88 those statistics are gone from the body (Nova moved
them to Placement) and ``uptime`` is in it instead; ``/statistics`` and
``/{id}/uptime`` end at 2.87, ``/{pattern}/search`` and ``/{pattern}/servers`` at
2.52 (replaced by the ``hypervisor_hostname_pattern`` and ``with_servers`` queries).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import socket
import time
import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import common, errors, liveness, microversions, models, runtime, services

# Task states that count as work in progress (Nova's compute stats).
WORKLOAD_TASKS = frozenset(
    {
        "resize_migrating",
        "rebuilding",
        "resize_prep",
        "image_snapshot",
        "image_backup",
        "rescuing",
        "unshelving",
        "shelving",
        "shelving_offloading",
    }
)
BOOLEAN_WORDS = {v for v in services.BOOLEAN_VALUES if isinstance(v, str)}


@dataclasses.dataclass
class Usage:
    vcpus: int = 0
    memory_mb: int = 0
    disk_gb: int = 0
    running_vms: int = 0
    workload: int = 0
    servers: list[dict[str, str]] = dataclasses.field(default_factory=list)


def _usage(session: Session, nodes: list[models.ComputeNode]) -> dict[int, Usage]:
    """Claims and servers per node id."""
    found: dict[int, Usage] = defaultdict(Usage)
    ids = [n.id for n in nodes]
    for node_id, vcpus, memory, disk in session.execute(
        select(
            models.Allocation.node_id,
            func.sum(models.Allocation.vcpus),
            func.sum(models.Allocation.memory_mb),
            func.sum(models.Allocation.disk_gb),
        )
        .where(models.Allocation.node_id.in_(ids))
        .group_by(models.Allocation.node_id)
    ):
        usage = found[node_id]
        usage.vcpus, usage.memory_mb, usage.disk_gb = int(vcpus), int(memory), int(disk)
    by_name = {n.hypervisor_hostname: n.id for n in nodes}
    for server_id, name, node, vm_state, task_state in session.execute(
        select(
            models.Server.id,
            models.Server.name,
            models.Server.node,
            models.Server.vm_state,
            models.Server.task_state,
        )
        .where(models.Server.node.in_(list(by_name)), models.Server.deleted.is_(False))
        .order_by(models.Server.created_at, models.Server.id)
    ):
        usage = found[by_name[node or ""]]
        usage.running_vms += 1
        usage.servers.append({"name": name, "uuid": server_id})
        if vm_state == "building" or task_state in WORKLOAD_TASKS:
            usage.workload += 1
    return found


def host_uptime(host: str) -> str | None:
    """What ``uptime`` prints, for this machine's own host; None for others (no agent
    reports it)."""
    if host not in (runtime.get().hostname, socket.gethostname()):
        return None
    try:
        with open("/proc/uptime") as source:
            seconds = int(float(source.read().split()[0]))
    except (OSError, ValueError, IndexError):
        return None
    days, rest_seconds = divmod(seconds, 86400)
    hours, minutes = rest_seconds // 3600, (rest_seconds % 3600) // 60
    loads = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    clock = time.strftime("%H:%M:%S")
    return f" {clock} up {days} days, {hours:2d}:{minutes:02d},  load average: {loads}"


def _view(
    request: rest.ApiRequest,
    node: models.ComputeNode,
    service: models.Service,
    usage: Usage,
    now: datetime.datetime,
    *,
    detail: bool,
    with_servers: bool = False,
) -> dict[str, Any]:
    by_uuid = microversions.at_least(request, "service_uuid")
    body: dict[str, Any] = {
        "id": node.uuid if by_uuid else node.id,
        "hypervisor_hostname": node.hypervisor_hostname,
        "state": "up" if liveness.is_up(service, now, services.down_time()) else "down",
        "status": "disabled" if service.disabled else "enabled",
    }
    if detail:
        body["hypervisor_type"] = node.hypervisor_type
        body["hypervisor_version"] = node.hypervisor_version
        body["host_ip"] = node.host_ip
        body["service"] = {
            "id": service.uuid if by_uuid else service.id,
            "host": node.host,
            "disabled_reason": service.disabled_reason,
        }
        if microversions.at_least(request, "hypervisor_stats_removed"):
            body["uptime"] = host_uptime(node.host)
        else:
            free_disk = node.local_gb - usage.disk_gb
            body.update(
                {
                    "vcpus": node.vcpus,
                    "memory_mb": node.memory_mb,
                    "local_gb": node.local_gb,
                    "vcpus_used": usage.vcpus,
                    "memory_mb_used": usage.memory_mb,
                    "local_gb_used": usage.disk_gb,
                    "free_ram_mb": node.memory_mb - usage.memory_mb,
                    "free_disk_gb": free_disk,
                    "current_workload": usage.workload,
                    "running_vms": usage.running_vms,
                    "disk_available_least": free_disk,
                }
            )
            cpu_info = node.cpu_info or {}
            if microversions.at_least(request, "hypervisor_cpu_info_dict"):
                body["cpu_info"] = cpu_info
            else:
                body["cpu_info"] = json.dumps(cpu_info)
    # Callers pass servers only where they are to be shown (with_servers, /servers).
    if usage.servers:
        body["servers"] = list(usage.servers)
    elif with_servers and microversions.at_least(request, "strict_param_validation"):
        body["servers"] = []
    return body


def _pairs(
    session: Session, pattern: str | None = None
) -> list[tuple[models.ComputeNode, models.Service]]:
    query = (
        select(models.ComputeNode, models.Service)
        .join(models.Service, models.Service.id == models.ComputeNode.service_id)
        .order_by(models.ComputeNode.id)
    )
    if pattern is not None:
        escaped = pattern.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(
            func.lower(models.ComputeNode.hypervisor_hostname).like(f"%{escaped}%", escape="\\")
        )
    return [(node, service) for node, service in session.execute(query).all()]


def _matching(session: Session, pattern: str) -> list[tuple[models.ComputeNode, models.Service]]:
    pairs = _pairs(session, pattern)
    if not pairs:
        raise errors.not_found(f"No hypervisor matching '{pattern}' could be found.")
    return pairs


def _bool_arg(request: rest.ApiRequest, name: str) -> bool:
    value = request.arg(name)
    if value is None:
        return False
    if value not in BOOLEAN_WORDS:
        raise errors.bad_request(
            f"Invalid input for query parameters {name}. Value: {value}. "
            f"'{value}' is not one of {sorted(BOOLEAN_WORDS)}"
        )
    return services.as_bool(value)


def _listing(request: rest.ApiRequest, session: Session, *, detail: bool) -> dict[str, Any]:
    paging = microversions.at_least(request, "hypervisor_paging")
    by_uuid = microversions.at_least(request, "service_uuid")
    pattern = None
    with_servers = False
    if by_uuid:
        services.reject_unknown_query(
            request, {"limit", "marker", "hypervisor_hostname_pattern", "with_servers"}
        )
        pattern = request.arg("hypervisor_hostname_pattern")
        with_servers = _bool_arg(request, "with_servers")
    if pattern is not None:
        if request.has_arg("limit") or request.arg("marker"):
            raise errors.bad_request(
                "Paging over hypervisors with the hypervisor_hostname_pattern query "
                "parameter is not supported."
            )
        pairs = _matching(session, pattern)
        paging = False
    else:
        pairs = _pairs(session)
    usage = _usage(session, [node for node, _ in pairs])
    now = common.now()
    bodies = [
        _view(
            request,
            node,
            service,
            usage[node.id] if with_servers else dataclasses.replace(usage[node.id], servers=[]),
            now,
            detail=detail,
            with_servers=with_servers,
        )
        for node, service in pairs
    ]
    result: dict[str, Any] = {}
    if paging:
        bodies, next_marker = common.page(request, bodies)
        if next_marker is not None:
            result["hypervisors_links"] = [common.next_link(request, next_marker)]
    result["hypervisors"] = bodies
    return result


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, "os_compute_api:os-hypervisors:list")
    return _listing(request, session, detail=False)


def detail(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, "os_compute_api:os-hypervisors:list-detail")
    return _listing(request, session, detail=True)


def _get(
    request: rest.ApiRequest, session: Session, raw_id: str
) -> tuple[models.ComputeNode, models.Service]:
    """The node by uuid (2.53+, else 400) or integer id (else 404)."""
    missing = errors.not_found(f"Hypervisor with ID '{raw_id}' could not be found.")
    if microversions.at_least(request, "service_uuid"):
        try:
            uuid.UUID(raw_id)
        except ValueError:
            raise errors.bad_request(f"Invalid uuid {raw_id}") from None
        node = session.scalar(select(models.ComputeNode).where(models.ComputeNode.uuid == raw_id))
    else:
        try:
            number = int(raw_id)
        except ValueError:
            raise missing from None
        node = session.get(models.ComputeNode, number)
    if node is None:
        raise missing
    service = session.get(models.Service, node.service_id)
    if service is None:
        raise missing
    return node, service


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, "os_compute_api:os-hypervisors:show")
    with_servers = False
    if microversions.at_least(request, "service_uuid"):
        services.reject_unknown_query(request, {"with_servers"})
        with_servers = _bool_arg(request, "with_servers")
    node, service = _get(request, session, request.path_params["hypervisor_id"])
    usage = _usage(session, [node])[node.id]
    if not with_servers:
        usage.servers = []
    body = _view(
        request, node, service, usage, common.now(), detail=True, with_servers=with_servers
    )
    return {"hypervisor": body}


def uptime(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    if microversions.at_least(request, "hypervisor_stats_removed"):
        raise errors.not_found("The resource could not be found.")
    common.enforce(request, "os_compute_api:os-hypervisors:uptime")
    node, service = _get(request, session, request.path_params["hypervisor_id"])
    text = host_uptime(node.host)
    if text is None:
        raise rest.NotImplementedYet("Action is not supported.")
    body = _view(request, node, service, Usage(), common.now(), detail=False)
    body["uptime"] = text
    return {"hypervisor": body}


def statistics(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    """Sums over the nodes of enabled compute services (as Nova's statistics)."""
    if microversions.at_least(request, "hypervisor_stats_removed"):
        raise errors.not_found("The resource could not be found.")
    common.enforce(request, "os_compute_api:os-hypervisors:statistics")
    pairs = [
        (node, service)
        for node, service in _pairs(session)
        if not service.disabled and service.binary == services.COMPUTE
    ]
    usage = _usage(session, [node for node, _ in pairs])
    totals = dict.fromkeys(
        (
            "count",
            "vcpus",
            "memory_mb",
            "local_gb",
            "vcpus_used",
            "memory_mb_used",
            "local_gb_used",
            "free_ram_mb",
            "free_disk_gb",
            "current_workload",
            "running_vms",
            "disk_available_least",
        ),
        0,
    )
    for node, _ in pairs:
        used = usage[node.id]
        totals["count"] += 1
        totals["vcpus"] += node.vcpus
        totals["memory_mb"] += node.memory_mb
        totals["local_gb"] += node.local_gb
        totals["vcpus_used"] += used.vcpus
        totals["memory_mb_used"] += used.memory_mb
        totals["local_gb_used"] += used.disk_gb
        totals["free_ram_mb"] += node.memory_mb - used.memory_mb
        totals["free_disk_gb"] += node.local_gb - used.disk_gb
        totals["current_workload"] += used.workload
        totals["running_vms"] += used.running_vms
        totals["disk_available_least"] += node.local_gb - used.disk_gb
    return {"hypervisor_statistics": totals}


def _before_253(request: rest.ApiRequest) -> None:
    if microversions.at_least(request, "service_uuid"):
        raise errors.not_found("The resource could not be found.")


def search(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    _before_253(request)
    common.enforce(request, "os_compute_api:os-hypervisors:search")
    pairs = _matching(session, request.path_params["pattern"])
    now = common.now()
    return {
        "hypervisors": [
            _view(request, node, service, Usage(), now, detail=False) for node, service in pairs
        ]
    }


def servers(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    _before_253(request)
    common.enforce(request, "os_compute_api:os-hypervisors:servers")
    pairs = _matching(session, request.path_params["pattern"])
    usage = _usage(session, [node for node, _ in pairs])
    now = common.now()
    return {
        "hypervisors": [
            _view(request, node, service, usage[node.id], now, detail=False)
            for node, service in pairs
        ]
    }


ROUTES: list[rest.Route] = [
    rest.Route("GET", "/v2.1/os-hypervisors", index),
    rest.Route("GET", "/v2.1/os-hypervisors/detail", detail),
    rest.Route("GET", "/v2.1/os-hypervisors/statistics", statistics),
    rest.Route("GET", "/v2.1/os-hypervisors/{hypervisor_id}", show),
    rest.Route("GET", "/v2.1/os-hypervisors/{hypervisor_id}/uptime", uptime),
    rest.Route("GET", "/v2.1/os-hypervisors/{pattern}/search", search),
    rest.Route("GET", "/v2.1/os-hypervisors/{pattern}/servers", servers),
]
