"""Per-project (and per-user) compute quotas (``/os-quota-sets/{project_id}``): show,
detail (limit / in_use / reserved), defaults, update and revert to the defaults.

The resources shown follow Nova's microversions: from 2.36 the nova-network ones
(fixed_ips, floating_ips, security_groups, security_group_rules) are gone, from 2.57
the injected-file ones. ``?user_id=`` reads or sets one user's limits in the project.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import common, errors, flavor_access, flavors, microversions, quotas

NETWORK = ("fixed_ips", "floating_ips", "security_group_rules", "security_groups")
INJECTED = ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes")
MAX_INT = 0x7FFFFFFF
VALUE = {"type": ["integer", "string"], "pattern": "^-?[0-9]+$"}
USER_QUERY = ("user_id",)


def shown_resources(request: rest.ApiRequest) -> list[str]:
    """The resources this microversion shows and accepts."""
    hidden: tuple[str, ...] = ()
    if microversions.at_least(request, "personality_removed"):
        hidden = NETWORK + INJECTED
    elif microversions.at_least(request, "proxy_apis_removed"):
        hidden = NETWORK
    return [name for name in quotas.RESOURCES if name not in hidden]


def quota_schema(member: str, resources: Iterable[str]) -> dict[str, Any]:
    properties: dict[str, Any] = {name: VALUE for name in resources}
    if member == "quota_set":
        properties["force"] = flavors.BOOLEAN
    return {
        "type": "object",
        "properties": {
            member: {"type": "object", "properties": properties, "additionalProperties": False}
        },
        "required": [member],
        "additionalProperties": False,
    }


def limit_values(values: Mapping[str, Any]) -> dict[str, int]:
    """Validated limits as integers (Nova's schema: -1 up to 2**31-1, strings allowed)."""
    result: dict[str, int] = {}
    for key, raw in values.items():
        if key == "force" or raw is None or raw == "":
            continue
        value = int(raw)
        if value < -1:
            raise flavors.field_error(key, raw, f"{raw} is less than the minimum of -1")
        if value > MAX_INT:
            raise flavors.field_error(key, raw, f"{raw} is greater than the maximum of {MAX_INT}")
        result[key] = value
    return result


def _target(request: rest.ApiRequest, action: str) -> str:
    project_id = request.path_params["project_id"]
    common.enforce(request, f"os_compute_api:os-quota-sets:{action}", {"project_id": project_id})
    return project_id


def _verify_project(session: Session, project_id: str) -> None:
    if not flavor_access.project_exists(session, project_id):
        raise errors.bad_request(f"Project ID {project_id} is not a valid project.")


def _user(request: rest.ApiRequest) -> str | None:
    values = request.query.get("user_id")
    return values[0] if values else None


def _quota_set(
    request: rest.ApiRequest, values: Mapping[str, Any], project_id: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"id": project_id} if project_id is not None else {}
    for name in shown_resources(request):
        body[name] = values[name]
    return {"quota_set": body}


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    flavors.strict_query(request, USER_QUERY, "strict_param_validation")
    project_id = _target(request, "show")
    _verify_project(session, project_id)
    return _quota_set(request, quotas.limits(session, project_id, _user(request)), project_id)


def detail(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    flavors.strict_query(request, USER_QUERY, "strict_param_validation")
    project_id = _target(request, "detail")
    _verify_project(session, project_id)
    user_id = _user(request)
    limits = quotas.limits(session, project_id, user_id)
    in_use = quotas.usage(session, project_id, user_id)
    values = {
        name: {"limit": limits[name], "in_use": in_use[name], "reserved": 0}
        for name in quotas.RESOURCES
    }
    return _quota_set(request, values, project_id)


def defaults(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    project_id = _target(request, "defaults")
    _verify_project(session, project_id)
    return _quota_set(request, quotas.defaults(session), project_id)


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    flavors.strict_query(request, USER_QUERY, "strict_param_validation")
    project_id = _target(request, "update")
    _verify_project(session, project_id)
    user_id = _user(request)
    body = common.body_of(request, None, quota_schema("quota_set", shown_resources(request)))
    wanted = body["quota_set"]
    force = bool(flavors.bool_from_string(wanted.get("force", False)))
    values = limit_values(wanted)
    if not force:
        ranges = quotas.settable(session, project_id, user_id)
        for key, value in values.items():
            minimum, maximum = ranges[key]
            _check_range(key, value, minimum, maximum)
    for key, value in values.items():
        quotas.set_limit(session, project_id, key, value, user_id)
    session.flush()
    return _quota_set(request, quotas.limits(session, project_id, user_id), None)


def _check_range(resource: str, value: int, minimum: int, maximum: int) -> None:
    def infinite(number: int) -> float:
        return float("inf") if number == -1 else number

    if infinite(value) < infinite(minimum):
        raise errors.bad_request(
            f"Quota limit {value} for {resource} must be greater than or equal to already "
            f"used and reserved {minimum}."
        )
    if infinite(value) > infinite(maximum):
        raise errors.bad_request(
            f"Quota limit {value} for {resource} must be less than or equal to {maximum}."
        )


def delete(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    flavors.strict_query(request, USER_QUERY, "strict_param_validation")
    project_id = _target(request, "delete")
    quotas.clear_limits(session, project_id, _user(request))
    return rest.ApiResponse(202)


ROUTES: list[rest.Route] = [
    rest.Route("GET", "/v2.1/os-quota-sets/{project_id}", show),
    rest.Route("PUT", "/v2.1/os-quota-sets/{project_id}", update),
    rest.Route("DELETE", "/v2.1/os-quota-sets/{project_id}", delete),
    rest.Route("GET", "/v2.1/os-quota-sets/{project_id}/detail", detail),
    rest.Route("GET", "/v2.1/os-quota-sets/{project_id}/defaults", defaults),
]
