"""The deprecated host API (``os-hosts``, up to 2.42): hosts by zone and what each holds.

A host is listed once per enabled service on it, with Nova's ``service`` topic
(``compute`` for nova-compute) and its zone. ``PUT /os-hosts/{host}`` with
``status`` enables or disables the host's compute service (the way schedulers see
it; Nova asks the driver, whose answer is the same for the fake one); maintenance
mode and host power actions are not something a stackbox driver does: 501 once
the host is known, as Nova answers for drivers without them.

Its routes are served from ``availability_zones`` (api.py lists no module for it).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import aggregates, common, errors, microversions, models, services

_ENABLE = ["enable", "disable", "Enable", "Disable", "ENABLE", "DISABLE"]
UPDATE = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": _ENABLE},
        "maintenance_mode": {"type": "string", "enum": _ENABLE},
    },
    "anyOf": [{"required": ["status"]}, {"required": ["maintenance_mode"]}],
    "additionalProperties": False,
}


def _before_243(request: rest.ApiRequest) -> None:
    if microversions.at_least(request, "host_apis_removed"):
        raise errors.not_found("The resource could not be found.")


def _topic(service: models.Service) -> str:
    if service.topic:
        return service.topic
    return service.binary.removeprefix("nova-")


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    _before_243(request)
    common.enforce(request, "os_compute_api:os-hosts:list")
    zones = aggregates.host_zones(session)
    wanted = request.arg("zone")
    hosts = []
    for service in session.scalars(
        select(models.Service)
        .where(
            models.Service.disabled.is_(False),
            models.Service.binary.not_in(services.API_BINARIES),
        )
        .order_by(models.Service.id)
    ):
        zone = services.zone_of(service, zones)
        if wanted and zone != wanted:
            continue
        hosts.append({"host_name": service.host, "service": _topic(service), "zone": zone})
    return {"hosts": hosts}


def _compute_service(session: Session, host: str) -> models.Service:
    service = session.scalar(
        select(models.Service).where(
            models.Service.host == host, models.Service.binary == services.COMPUTE
        )
    )
    if service is None:
        raise errors.not_found(f"Compute host {host} could not be found.")
    return service


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    """Totals, claims, the servers' flavors summed, and the same per project."""
    _before_243(request)
    common.enforce(request, "os_compute_api:os-hosts:show")
    host = request.path_params["host"]
    _compute_service(session, host)
    node = session.scalar(
        select(models.ComputeNode)
        .where(models.ComputeNode.host == host)
        .order_by(models.ComputeNode.id)
    )
    if node is None:
        raise errors.not_found(f"Compute host {host} could not be found.")
    claimed = [0, 0, 0]
    for vcpus, memory, disk in session.execute(
        select(
            models.Allocation.vcpus, models.Allocation.memory_mb, models.Allocation.disk_gb
        ).where(models.Allocation.node_id == node.id)
    ):
        claimed = [claimed[0] + vcpus, claimed[1] + memory, claimed[2] + disk]
    per_project: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for project_id, flavor in session.execute(
        select(models.Server.project_id, models.Server.flavor)
        .where(models.Server.host == host, models.Server.deleted.is_(False))
        .order_by(models.Server.created_at)
    ):
        flavor = flavor or {}
        sums = per_project[project_id]
        sums[0] += int(flavor.get("vcpus", 0))
        sums[1] += int(flavor.get("memory_mb", 0))
        sums[2] += int(flavor.get("root_gb", 0)) + int(flavor.get("ephemeral_gb", 0))
    peak = [sum(s[i] for s in per_project.values()) for i in range(3)]
    rows = [
        ("(total)", [node.vcpus, node.memory_mb, node.local_gb]),
        ("(used_now)", claimed),
        ("(used_max)", peak),
        *per_project.items(),
    ]
    return {
        "host": [
            {
                "resource": {
                    "host": host,
                    "project": project,
                    "cpu": cpu,
                    "memory_mb": memory,
                    "disk_gb": disk,
                }
            }
            for project, (cpu, memory, disk) in rows
        ]
    }


def _not_supported() -> rest.ApiError:
    return rest.NotImplementedYet("Action is not supported.", kind="notImplemented")


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    _before_243(request)
    common.enforce(request, "os_compute_api:os-hosts:update")
    body = common.body_of(request, None, UPDATE)
    host = request.path_params["host"]
    result: dict[str, Any] = {"host": host}
    if "status" in body:
        service = _compute_service(session, host)
        enabled = body["status"].lower() == "enable"
        service.disabled = not enabled
        service.disabled_reason = None
        service.updated_at = common.now()
        result["status"] = "enabled" if enabled else "disabled"
    if "maintenance_mode" in body:
        _compute_service(session, host)
        raise _not_supported()
    return result


def _power(request: rest.ApiRequest, session: Session, action: str) -> dict[str, Any]:
    _before_243(request)
    common.enforce(request, f"os_compute_api:os-hosts:{action}")
    _compute_service(session, request.path_params["host"])
    raise _not_supported()


def startup(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    return _power(request, session, "start")


def shutdown(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    return _power(request, session, "shutdown")


def reboot(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    return _power(request, session, "reboot")


ROUTES: list[rest.Route] = [
    rest.Route("GET", "/v2.1/os-hosts", index),
    rest.Route("GET", "/v2.1/os-hosts/{host}", show),
    rest.Route("PUT", "/v2.1/os-hosts/{host}", update),
    rest.Route("GET", "/v2.1/os-hosts/{host}/startup", startup),
    rest.Route("GET", "/v2.1/os-hosts/{host}/shutdown", shutdown),
    rest.Route("GET", "/v2.1/os-hosts/{host}/reboot", reboot),
]
