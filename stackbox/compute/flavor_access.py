"""Flavor access lists (os-flavor-access): which projects may use a private flavor.

``GET /flavors/{id}/os-flavor-access`` lists them (404 for a public flavor, which
every project may use); ``POST /flavors/{id}/action`` with ``addTenantAccess`` or
``removeTenantAccess`` changes them. As in Nova, creating a private flavor does not
give the creator's project access.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import common, errors, flavors, microversions, models
from stackbox.identity import models as identity_models

_TENANT = {
    "type": "object",
    "properties": {"tenant": {"type": "string", "minLength": 1, "maxLength": 255}},
    "required": ["tenant"],
    "additionalProperties": False,
}
# Only ``addTenantAccess``/``removeTenantAccess`` act on flavors; anything else is 400.
ACTIONS = ("addTenantAccess", "removeTenantAccess")


def marshal(session: Session, flavor: models.Flavor) -> dict[str, Any]:
    projects = session.scalars(
        select(models.FlavorAccess.project_id)
        .where(models.FlavorAccess.flavor_id == flavor.id)
        .order_by(models.FlavorAccess.project_id)
    )
    return {
        "flavor_access": [
            {"flavor_id": flavor.flavorid, "tenant_id": project_id} for project_id in projects
        ]
    }


def project_exists(session: Session, project_id: str) -> bool:
    """Nova asks Keystone; here the identity tables are in the same database."""
    return session.get(identity_models.Project, project_id) is not None


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    common.enforce(request, "os_compute_api:os-flavor-access")
    flavor = flavors.get_flavor(session, request.context, request.path_params["flavor_id"])
    if flavor.is_public:
        raise errors.not_found("Access list not available for public flavors.")
    return marshal(session, flavor)


def _add(request: rest.ApiRequest, session: Session, tenant: str) -> dict[str, Any]:
    common.enforce(request, "os_compute_api:os-flavor-access:add_tenant_access")
    if not project_exists(session, tenant):
        raise errors.bad_request(f"Project ID {tenant} is not a valid project.")
    flavor = flavors.get_flavor(session, request.context, request.path_params["flavor_id"])
    if microversions.at_least(request, "flavor_access_public_conflict") and flavor.is_public:
        raise errors.conflict("Can not add access to a public flavor.")
    if session.get(models.FlavorAccess, (flavor.id, tenant)) is not None:
        raise errors.conflict(
            f"Flavor access already exists for flavor {flavor.flavorid} and project "
            f"{tenant} combination."
        )
    session.add(models.FlavorAccess(flavor_id=flavor.id, project_id=tenant))
    session.flush()
    return marshal(session, flavor)


def _remove(request: rest.ApiRequest, session: Session, tenant: str) -> dict[str, Any]:
    common.enforce(request, "os_compute_api:os-flavor-access:remove_tenant_access")
    # A project that no longer exists may still be removed from the list.
    flavor = flavors.get_flavor(session, request.context, request.path_params["flavor_id"])
    row = session.get(models.FlavorAccess, (flavor.id, tenant))
    if row is None:
        raise errors.not_found(
            f"Flavor access not found for {flavor.flavorid} / {tenant} combination."
        )
    session.delete(row)
    session.flush()
    return marshal(session, flavor)


def action(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    body = request.body
    if not isinstance(body, dict) or len(body) != 1:
        raise errors.bad_request("Malformed request body")
    name = next(iter(body))
    if name not in ACTIONS:
        raise errors.bad_request(f"There is no such action: {name}")
    tenant = common.body_of(request, name, _TENANT)["tenant"]
    if name == "addTenantAccess":
        return _add(request, session, tenant)
    return _remove(request, session, tenant)


ROUTES: list[rest.Route] = [
    rest.Route("GET", "/v2.1/flavors/{flavor_id}/os-flavor-access", index),
    rest.Route("POST", "/v2.1/flavors/{flavor_id}/action", action),
]
