"""Compute services (``os-services``): list, enable / disable / force down, delete.

The compute agents register their ``nova-compute`` service and heartbeat into it
(``compute.hosts``); this module only reads and updates those rows. A service is
up while its last heartbeat is younger than ``service_down_time`` and it is not
forced down. stackbox runs no scheduler or conductor processes (the scheduler runs
inside the API's transaction), so no ``nova-scheduler``/``nova-conductor`` rows are
shown: only what registered.

Before 2.53 a service is named by ``host`` and ``binary`` in the body of
``PUT /os-services/{enable,disable,disable-log-reason,force-down}`` and by its
integer id; from 2.53 by its uuid (``PUT /os-services/{uuid}``).
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import aggregates, common, errors, liveness, microversions, models, runtime

COMPUTE = "nova-compute"
INTERNAL_ZONE = "internal"
# Nova hides its API services: they never report, so they would always look down.
API_BINARIES = ("nova-osapi_compute", "nova-metadata")
# Migration statuses that are over (Nova's get_in_progress_by_host_and_node).
FINISHED_MIGRATIONS = (
    "confirmed",
    "reverted",
    "error",
    "failed",
    "completed",
    "cancelled",
    "done",
)
TRUE_WORDS = ("true", "1", "on", "yes", "y", "t")
FALSE_WORDS = ("false", "0", "off", "no", "n", "f")
# The strings (and JSON booleans) Nova's boolean parameters accept.
BOOLEAN_VALUES: list[bool | str] = [
    True,
    "True",
    "TRUE",
    "true",
    "1",
    "ON",
    "On",
    "on",
    "YES",
    "Yes",
    "yes",
    False,
    "False",
    "FALSE",
    "false",
    "0",
    "OFF",
    "Off",
    "off",
    "NO",
    "No",
    "no",
]
BOOLEAN = {"type": ["boolean", "string"], "enum": BOOLEAN_VALUES}
_REASON = {"type": "string", "minLength": 1, "maxLength": 255}
_HOST = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[a-zA-Z0-9-._]*$"}
_BINARY = {"type": "string", "minLength": 1, "maxLength": 255}


def _legacy_schema(force_down: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {"host": _HOST, "binary": _BINARY, "disabled_reason": _REASON}
    if force_down:
        properties["forced_down"] = BOOLEAN
    return {
        "type": "object",
        "properties": properties,
        "required": ["host", "binary"],
        "additionalProperties": False,
    }


UPDATE_V21 = _legacy_schema(False)
UPDATE_V211 = _legacy_schema(True)
UPDATE_V253 = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["enabled", "disabled"]},
        "disabled_reason": _REASON,
        "forced_down": BOOLEAN,
    },
    "additionalProperties": False,
}


def as_bool(value: Any) -> bool:
    """A boolean from JSON or from one of the words Nova accepts (schema-checked already)."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in TRUE_WORDS


def reject_unknown_query(request: rest.ApiRequest, allowed: set[str]) -> None:
    """From 2.75 (or wherever a caller applies it) unknown query parameters are 400."""
    unknown = sorted(set(request.query) - allowed)
    if unknown:
        raise errors.bad_request(
            "Invalid input for query parameters . Value: "
            f"{dict((k, request.query[k]) for k in unknown)}. Additional properties are not "
            f"allowed ('{unknown[0]}' was unexpected)"
        )


def down_time() -> int:
    return runtime.get().settings.service_down_time


def updated_time(service: models.Service) -> datetime.datetime | None:
    """When the row last changed: an update through the API or the latest heartbeat."""
    moments = [m for m in (service.updated_at, service.last_seen_up) if m is not None]
    return max(moments) if moments else None


def zone_of(service: models.Service, zones: dict[str, str]) -> str:
    if service.binary != COMPUTE:
        return INTERNAL_ZONE
    return zones.get(service.host) or aggregates.default_zone()


def render(
    request: rest.ApiRequest,
    service: models.Service,
    zones: dict[str, str],
    now: datetime.datetime,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "binary": service.binary,
        "host": service.host,
        "id": service.uuid if microversions.at_least(request, "service_uuid") else service.id,
        "zone": zone_of(service, zones),
        "status": "disabled" if service.disabled else "enabled",
        "state": "up" if liveness.is_up(service, now, down_time()) else "down",
        "updated_at": common.isotime_micro(updated_time(service)),
        "disabled_reason": service.disabled_reason,
    }
    if microversions.at_least(request, "force_down"):
        body["forced_down"] = bool(service.forced_down)
    return body


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, "os_compute_api:os-services:list")
    if microversions.at_least(request, "strict_param_validation"):
        reject_unknown_query(request, {"host", "binary"})
    query = select(models.Service).where(models.Service.binary.not_in(API_BINARIES))
    host = request.arg("host")
    binary = request.arg("binary")
    if host:
        query = query.where(models.Service.host == host)
    if binary:
        query = query.where(models.Service.binary == binary)
    services = list(session.scalars(query.order_by(models.Service.id)))
    zones = aggregates.host_zones(session)
    now = common.now()
    return {"services": [render(request, s, zones, now) for s in services]}


# --- updates --------------------------------------------------------------------------------


def _not_compute(binary: str) -> rest.BadRequest:
    return errors.bad_request(
        f"Updating a {binary} service is not supported. Only nova-compute services can be updated."
    )


def _check_for_evacuations(session: Session, host: str) -> None:
    """Nova refuses to force a host back up while it has finished evacuations the host's
    compute service has not cleaned up (it does so when it starts again)."""
    done = session.scalar(
        select(models.Migration.id).where(
            models.Migration.source_compute == host,
            models.Migration.status == "done",
            models.Migration.migration_type == "evacuation",
        )
    )
    if done is not None:
        raise errors.bad_request(
            f"Unable to force up host {host} as `done` evacuation migration records remain "
            "associated with the host. Ensure the compute service has been restarted, "
            "allowing these records to move to `completed` before retrying this request."
        )


def _legacy_update(request: rest.ApiRequest, session: Session, action: str) -> dict[str, Any]:
    force_down = microversions.at_least(request, "force_down")
    body = common.body_of(request, None, UPDATE_V211 if force_down else UPDATE_V21)
    actions = {"enable", "disable", "disable-log-reason"} | (
        {"force-down"} if force_down else set()
    )
    if action not in actions:
        raise errors.not_found("Unknown action")
    host, binary = body["host"], body["binary"]
    result: dict[str, Any] = {"host": host, "binary": binary}
    changes: dict[str, Any]
    if action == "force-down":
        if "forced_down" not in body:
            raise errors.bad_request("Missing forced_down field")
        forced = as_bool(body["forced_down"])
        if binary == COMPUTE and not forced:
            _check_for_evacuations(session, host)
        changes = {"forced_down": forced}
        result["forced_down"] = forced
    elif action == "enable":
        changes = {"disabled": False, "disabled_reason": None}
        result["status"] = "enabled"
    else:
        reason = None
        if action == "disable-log-reason":
            if "disabled_reason" not in body:
                raise errors.bad_request("Missing disabled reason field")
            reason = body["disabled_reason"]
        changes = {"disabled": True, "disabled_reason": reason}
        result["status"] = "disabled"
        if reason:
            result["disabled_reason"] = reason
    if binary != COMPUTE:
        raise _not_compute(binary)
    service = session.scalar(
        select(models.Service).where(models.Service.host == host, models.Service.binary == binary)
    )
    if service is None:
        raise errors.not_found(f"Could not find binary {binary} on host {host}.")
    for key, value in changes.items():
        setattr(service, key, value)
    service.updated_at = common.now()
    return {"service": result}


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _update_v253(request: rest.ApiRequest, session: Session, service_id: str) -> dict[str, Any]:
    body = common.body_of(request, None, UPDATE_V253)
    if not _is_uuid(service_id):
        raise errors.bad_request(f"Invalid uuid {service_id}")
    service = session.scalar(select(models.Service).where(models.Service.uuid == service_id))
    if service is None:
        raise errors.not_found(f"Service {service_id} could not be found.")
    if service.binary != COMPUTE:
        raise _not_compute(service.binary)
    changed = False
    if body.get("status") == "enabled":
        if body.get("disabled_reason"):
            raise errors.bad_request(
                "Specifying 'disabled_reason' with status 'enabled' is invalid."
            )
        service.disabled, service.disabled_reason = False, None
        changed = True
    elif body.get("status") == "disabled":
        service.disabled, service.disabled_reason = True, body.get("disabled_reason")
        changed = True
    if "forced_down" in body:
        service.forced_down = as_bool(body["forced_down"])
        changed = True
        if not service.forced_down:
            _check_for_evacuations(session, service.host)
    if not changed:
        raise errors.bad_request(
            "No updates were requested. Fields 'status' or 'forced_down' should be specified."
        )
    service.updated_at = common.now()
    session.flush()
    zones = {service.host: aggregates.host_zone(session, service.host)}
    return {"service": render(request, service, zones, common.now())}


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, "os_compute_api:os-services:update")
    service_id = request.path_params["service_id"]
    if microversions.at_least(request, "service_uuid"):
        return _update_v253(request, session, service_id)
    return _legacy_update(request, session, service_id)


# --- delete ---------------------------------------------------------------------------------


def _find(session: Session, request: rest.ApiRequest, service_id: str) -> models.Service:
    if microversions.at_least(request, "service_uuid"):
        if not _is_uuid(service_id):
            raise errors.bad_request(f"Invalid uuid {service_id}")
        found = session.scalar(select(models.Service).where(models.Service.uuid == service_id))
    else:
        try:
            number = int(service_id)
        except ValueError:
            raise errors.bad_request("Invalid input received: id must be an integer") from None
        found = session.get(models.Service, number)
    if found is None:
        raise errors.not_found(f"Service {service_id} not found.")
    return found


def delete_service(request: rest.ApiRequest, session: Session) -> None:
    """Delete a service and its compute nodes, once no server and no unfinished
    migration needs them; its host leaves every aggregate."""
    common.enforce(request, "os_compute_api:os-services:delete")
    service = _find(session, request, request.path_params["service_id"])
    if service.binary == COMPUTE:
        servers = session.scalar(
            select(func.count())
            .select_from(models.Server)
            .where(models.Server.host == service.host, models.Server.deleted.is_(False))
        )
        if servers:
            raise errors.conflict(
                "Unable to delete compute service that is hosting instances. Migrate or "
                "delete the instances first."
            )
        moving = session.scalar(
            select(models.Migration.id).where(
                or_(
                    models.Migration.source_compute == service.host,
                    models.Migration.dest_compute == service.host,
                ),
                models.Migration.status.not_in(FINISHED_MIGRATIONS),
            )
        )
        if moving is not None:
            raise errors.conflict(
                "Unable to delete compute service that has in-progress migrations. Complete "
                "the migrations or delete the instances first."
            )
        aggregates.remove_host_everywhere(session, service.host)
        session.execute(
            delete(models.ComputeNode).where(models.ComputeNode.service_id == service.id)
        )
    session.delete(service)
    return None


ROUTES: list[rest.Route] = [
    rest.Route("GET", "/v2.1/os-services", index),
    rest.Route("PUT", "/v2.1/os-services/{service_id}", update),
    rest.Route("DELETE", "/v2.1/os-services/{service_id}", delete_service),
]
