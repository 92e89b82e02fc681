"""/v2.0/quotas: per-project limits (show, update, reset), defaults, and usage details.

As Neutron: a project's quota shows every resource (its own limit where one is
set, the default otherwise); ``PUT`` refuses a limit below what is already used
unless ``force`` is true; ``DELETE`` drops the project's own limits (404 if it
had none); ``/details`` gives used, limit and reserved (always 0 here: creates
count and insert in one transaction, so nothing is ever reserved).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.network import attributes as A
from stackbox.network import common, errors, models, quotas

MAX_LIMIT = 2**31 - 1


def _project(request: rest.ApiRequest) -> str:
    # Neutron accepts a ".json" format suffix on its URLs (openstacksdk sends one).
    return request.path_params["project_id"].removesuffix(".json")


def _may_read(request: rest.ApiRequest, project_id: str) -> None:
    if project_id != request.context.project_id:
        common.enforce(request, "get_quota", {"project_id": project_id})


def list_quotas(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    """Every project that has a limit of its own (admins)."""
    common.enforce(request, "get_quota", {"project_id": "*"})
    projects = sorted(set(session.scalars(select(models.Quota.project_id))))
    found = []
    for project_id in projects:
        body: dict[str, Any] = {"project_id": project_id, "tenant_id": project_id}
        body.update(quotas.limits(session, project_id))
        found.append(body)
    return {"quotas": found}


def current_project(request: rest.ApiRequest, session: object) -> dict[str, Any]:
    project_id = request.context.project_id
    if not project_id:
        raise errors.bad_request("Tenant-id was missing from quota request.", "QuotaMissingTenant")
    return {"project": {"project_id": project_id}}


def current_tenant(request: rest.ApiRequest, session: object) -> dict[str, Any]:
    project_id = request.context.project_id
    if not project_id:
        raise errors.bad_request("Tenant-id was missing from quota request.", "QuotaMissingTenant")
    return {"tenant": {"tenant_id": project_id}}


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    project_id = _project(request)
    _may_read(request, project_id)
    return {"quota": common.fields_wanted(request, quotas.limits(session, project_id))}


def show_default(request: rest.ApiRequest, session: object) -> dict[str, Any]:
    project_id = _project(request)
    _may_read(request, project_id)
    return {"quota": quotas.defaults()}


def details(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    project_id = _project(request)
    ctx = request.context
    if project_id != ctx.project_id and not common.is_admin(ctx):
        raise errors.forbidden(
            "User does not have admin privileges: Only admin is authorized to access quotas "
            "for another project.",
            kind="AdminRequired",
        )
    limits = quotas.limits(session, project_id)
    return {
        "quota": {
            name: {
                "limit": limits[name],
                "used": quotas.used(session, project_id, name),
                "reserved": 0,
            }
            for name in quotas.RESOURCES
        }
    }


def _limit_value(name: str, value: Any) -> int:
    try:
        number = A.integer(quotas.UNLIMITED, MAX_LIMIT)(value)
    except A.Invalid as exc:
        if "too small" in str(exc) or "too large" in str(exc):
            reason = f"'{value}' is not in range {quotas.UNLIMITED} through {MAX_LIMIT}"
        else:
            reason = f"'{value}' is not an integer"
        raise errors.invalid_input(f"Invalid input for {name}. Reason: {reason}") from None
    return number


def update(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    project_id = _project(request)
    common.enforce(request, "update_quota", {"project_id": project_id})
    item = dict(A.body_of(request, "quota"))
    force = item.pop("force", None)
    item.pop("check_limit", None)
    unknown = [key for key in item if key not in quotas.RESOURCES]
    if unknown:
        raise errors.bad_request(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    wanted = {name: _limit_value(name, value) for name, value in item.items()}
    forced = force is not None and A.boolean(force)
    quotas.lock(session, project_id)
    if not forced:
        for name, value in wanted.items():
            if value == quotas.UNLIMITED:
                continue
            in_use = quotas.used(session, project_id, name)
            if in_use > value:
                raise errors.bad_request(
                    f"Quota limit {value} for {name} must be greater than or equal to already "
                    f"used {in_use}",
                    kind="HTTPBadRequest",
                )
    for name, value in wanted.items():
        row = session.get(models.Quota, (project_id, name))
        if row is None:
            session.add(models.Quota(project_id=project_id, resource=name, limit=value))
        else:
            row.limit = value
    session.flush()
    return {"quota": quotas.limits(session, project_id)}


def reset(request: rest.ApiRequest, session: Session) -> None:
    project_id = _project(request)
    common.enforce(request, "delete_quota", {"project_id": project_id})
    removed = (
        session.query(models.Quota)
        .filter(models.Quota.project_id == project_id)
        .delete(synchronize_session=False)
    )
    if not removed:
        raise errors.not_found(
            "TenantQuotaNotFound", f"Quota for project {project_id} could not be found."
        )


def not_implemented(request: rest.ApiRequest, session: object) -> None:
    raise rest.ApiError(
        "POST requests are not supported on this resource.", status=501, kind="NotImplemented"
    )


ROUTES = [
    rest.Route("GET", "/v2.0/quotas", list_quotas),
    rest.Route("POST", "/v2.0/quotas", not_implemented, no_db=True),
    rest.Route("GET", "/v2.0/quotas/project", current_project, no_db=True),
    rest.Route("GET", "/v2.0/quotas/tenant", current_tenant, no_db=True),
    rest.Route("GET", "/v2.0/quotas/{project_id}/default", show_default, no_db=True),
    rest.Route("GET", "/v2.0/quotas/{project_id}/default.json", show_default, no_db=True),
    rest.Route("GET", "/v2.0/quotas/{project_id}/details", details),
    rest.Route("GET", "/v2.0/quotas/{project_id}/details.json", details),
    rest.Route("GET", "/v2.0/quotas/{project_id}", show),
    rest.Route("PUT", "/v2.0/quotas/{project_id}", update),
    rest.Route("DELETE", "/v2.0/quotas/{project_id}", reset),
]
