"""Catalog administration: services, endpoints and regions (``/v3/services|endpoints|regions``).

Rows keep Keystone's split: typed columns for what the catalog and filters use,
everything else a client sent (a service's name and description included) in
``extra``, returned as-is. Every write bumps the runtime generation so cached
token catalogs are rebuilt.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stackbox import rest, validation
from stackbox.identity import errors, models, resources, runtime

INTERFACES = ["admin", "internal", "public"]
# Placeholders an endpoint URL may carry (filled per token by the catalog).
URL_SUBSTITUTIONS = ("tenant_id", "project_id", "user_id", "compute_host", "public_endpoint")
# Members of a request body that are never stored: the server owns them.
_SERVER_OWNED = ("id", "links")

_SERVICE_PROPERTIES: dict[str, Any] = {
    "type": {"type": "string", "minLength": 1, "maxLength": 255},
    "name": {"type": "string", "minLength": 1, "maxLength": 255},
    "enabled": {"type": "boolean"},
}
SERVICE_CREATE_SCHEMA = validation.creating(_SERVICE_PROPERTIES, "type")
SERVICE_UPDATE_SCHEMA = validation.updating(_SERVICE_PROPERTIES)

_ENDPOINT_PROPERTIES: dict[str, Any] = {
    "enabled": {"type": "boolean"},
    "interface": {"type": "string", "enum": INTERFACES},
    "region_id": {"type": ["string", "null"]},
    "region": {"type": ["string", "null"]},
    "service_id": {"type": "string"},
    # Keystone's limit (225, sic) and shape: a scheme, a colon, something after it.
    "url": {"type": "string", "minLength": 0, "maxLength": 225, "pattern": "^[a-zA-Z0-9+.-]+:.+"},
    "name": {"type": "string"},
    "description": {"type": ["string", "null"]},
}
ENDPOINT_CREATE_SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "string"}, **_ENDPOINT_PROPERTIES},
    "required": ["interface", "service_id", "url"],
    "additionalProperties": True,
}
ENDPOINT_UPDATE_SCHEMA = validation.updating(_ENDPOINT_PROPERTIES)
ENDPOINT_QUERY_SCHEMA = {
    "type": "object",
    "properties": {"interface": {"type": "string", "enum": INTERFACES}},
    "additionalProperties": True,
}

_REGION_ID = {"type": ["string", "null"], "minLength": 1, "maxLength": 255}
_REGION_PROPERTIES: dict[str, Any] = {
    "description": {"type": ["string", "null"], "maxLength": 255},
    "id": _REGION_ID,
    "parent_region_id": _REGION_ID,
}
REGION_CREATE_SCHEMA = {
    "type": "object",
    # An empty id means "generate one", as with no id at all.
    "properties": {**_REGION_PROPERTIES, "id": {**_REGION_ID, "minLength": 0}},
    "additionalProperties": True,
}
REGION_UPDATE_SCHEMA = validation.updating(_REGION_PROPERTIES)
REGION_QUERY_SCHEMA = {
    "type": "object",
    "properties": {"parent_region_id": _REGION_ID},
    "additionalProperties": False,
}


def expecting(attribute: str, target: str) -> rest.BadRequest:
    """Keystone's ValidationError wording."""
    return rest.BadRequest(
        f"Expecting to find {attribute} in {target}. The server could not comply with the "
        "request since it is either malformed or otherwise incorrect. The client is assumed "
        "to be in error."
    )


def normalized(ref: dict[str, Any]) -> dict[str, Any]:
    """Keystone's key normalisation on create: ``os:x`` and ``os-x`` become ``os_x``."""
    return {key.replace(":", "_").replace("-", "_"): value for key, value in ref.items()}


def require_matching_id(ref: dict[str, Any], path_id: str) -> None:
    if ref.get("id") is not None and ref["id"] != path_id:
        raise rest.BadRequest("Cannot change ID")


def check_query(request: rest.ApiRequest, schema: dict[str, Any]) -> None:
    validation.check(schema, {key: values[-1] for key, values in request.query.items()})


def _matches(actual: Any, wanted: str) -> bool:
    if isinstance(actual, bool):
        return actual == resources.truthy(wanted)
    return actual == wanted


def _matches_inexact(actual: Any, wanted: str, comparator: str, case_sensitive: bool) -> bool:
    if not isinstance(actual, str):
        return False
    if not case_sensitive:
        actual, wanted = actual.lower(), wanted.lower()
    if comparator == "contains":
        return wanted in actual
    if comparator == "startswith":
        return actual.startswith(wanted)
    if comparator == "endswith":
        return actual.endswith(wanted)
    return True  # Keystone ignores comparators it does not know.


def filter_refs(
    request: rest.ApiRequest, refs: list[dict[str, Any]], keys: Iterable[str]
) -> list[dict[str, Any]]:
    """Apply ``?key=value`` and ``?key__[i]contains|startswith|endswith=`` filters."""
    allowed = set(keys)
    for name, values in request.query.items():
        base, _, operator = name.partition("__")
        if base not in allowed:
            continue
        for wanted in values:
            if not operator:
                refs = [r for r in refs if _matches(r.get(base), wanted)]
                continue
            case_sensitive = not operator.startswith("i")
            comparator = operator if case_sensitive else operator[1:]
            refs = [
                r
                for r in refs
                if base in r and _matches_inexact(r[base], wanted, comparator, case_sensitive)
            ]
    return refs


def _extra_of(ref: dict[str, Any], columns: Iterable[str]) -> dict[str, Any]:
    skip = set(columns) | set(_SERVER_OWNED)
    return {k: v for k, v in ref.items() if k not in skip}


# Services.

_SERVICE_COLUMNS = ("type", "enabled")


def render_service(service: models.Service) -> dict[str, Any]:
    body: dict[str, Any] = {"name": ""}
    body.update(service.extra)
    body.update(
        {
            "id": service.id,
            "type": service.type,
            "enabled": service.enabled,
            "links": resources.self_link(f"/v3/services/{service.id}"),
        }
    )
    return body


def get_service(session: Session, service_id: str) -> models.Service:
    return resources.get_or_404(session, models.Service, service_id, "service")


def create_service(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    ref = normalized(resources.body_of(request, "service", SERVICE_CREATE_SCHEMA))
    resources.enforce(request, "identity:create_service")
    extra = _extra_of(ref, _SERVICE_COLUMNS)
    extra.setdefault("name", "")
    service = models.Service(
        id=resources.new_id(), type=ref["type"], enabled=ref.get("enabled", True), extra=extra
    )
    session.add(service)
    session.flush()
    runtime.changed(session)
    return rest.ApiResponse(201, {"service": render_service(service)})


def list_services(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    resources.enforce(request, "identity:list_services")
    rows = session.scalars(select(models.Service).order_by(models.Service.type)).all()
    rendered = filter_refs(request, [render_service(s) for s in rows], ("type", "name"))
    return resources.limited(rendered, "services", request, rendered)


def show_service(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    resources.enforce(request, "identity:get_service")
    return {"service": render_service(get_service(session, request.path_params["service_id"]))}


def update_service(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ref = resources.body_of(request, "service", SERVICE_UPDATE_SCHEMA)
    resources.enforce(request, "identity:update_service")
    require_matching_id(ref, request.path_params["service_id"])
    service = get_service(session, request.path_params["service_id"])
    if "type" in ref:
        service.type = ref["type"]
    if "enabled" in ref:
        service.enabled = ref["enabled"]
    service.extra = {**service.extra, **_extra_of(ref, _SERVICE_COLUMNS)}
    session.flush()
    runtime.changed(session)
    return {"service": render_service(service)}


def delete_service(request: rest.ApiRequest, session: Session) -> None:
    resources.enforce(request, "identity:delete_service")
    service = get_service(session, request.path_params["service_id"])
    endpoints = session.scalars(
        select(models.Endpoint).where(models.Endpoint.service_id == service.id)
    ).all()
    for endpoint in endpoints:
        delete_endpoint_row(session, endpoint)
    session.delete(service)
    runtime.changed(session)


# Endpoints.

_ENDPOINT_COLUMNS = ("interface", "region_id", "region", "service_id", "url", "enabled")


def render_endpoint(endpoint: models.Endpoint) -> dict[str, Any]:
    body: dict[str, Any] = dict(endpoint.extra)
    body.update(
        {
            "id": endpoint.id,
            "interface": endpoint.interface,
            "region_id": endpoint.region_id,
            "region": endpoint.region_id,
            "service_id": endpoint.service_id,
            "url": endpoint.url,
            "enabled": endpoint.enabled,
            "links": resources.self_link(f"/v3/endpoints/{endpoint.id}"),
        }
    )
    return body


def get_endpoint(session: Session, endpoint_id: str) -> models.Endpoint:
    return resources.get_or_404(session, models.Endpoint, endpoint_id, "endpoint")


def _check_url(url: str) -> None:
    """Reject placeholders the catalog could never fill (Keystone's whitelist)."""
    try:
        url.replace("$(", "%(") % dict.fromkeys(URL_SUBSTITUTIONS, "")
    except (KeyError, TypeError, ValueError):
        raise rest.BadRequest(f"Cannot create an endpoint with an invalid URL: {url}.") from None


def _resolve_region(session: Session, ref: dict[str, Any]) -> None:
    """Map the legacy ``region`` to ``region_id``, creating that region if it is new.

    Only ``region_id`` must name an existing region; ``region`` keeps the v2-era
    behaviour of creating the region on the fly, as Keystone does.
    """
    legacy = ref.pop("region", None)
    if ref.get("region_id") is None and legacy is not None:
        if len(legacy) > 255:
            raise rest.BadRequest("Invalid input for field 'region': longer than 255 characters")
        ref["region_id"] = legacy
        if session.get(models.Region, legacy) is None:
            session.add(models.Region(id=legacy, description="", extra={}))
            session.flush()


def _check_references(session: Session, ref: dict[str, Any]) -> None:
    region_id = ref.get("region_id")
    if region_id is not None and session.get(models.Region, region_id) is None:
        raise expecting("endpoint region_id", "region table")
    service_id = ref.get("service_id")
    if service_id is not None and session.get(models.Service, service_id) is None:
        raise expecting("endpoint service_id", "service table")


def create_endpoint(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    ref = normalized(resources.body_of(request, "endpoint", ENDPOINT_CREATE_SCHEMA))
    resources.enforce(request, "identity:create_endpoint")
    _check_url(ref["url"])
    _resolve_region(session, ref)
    _check_references(session, ref)
    endpoint = models.Endpoint(
        id=resources.new_id(),
        service_id=ref["service_id"],
        interface=ref["interface"],
        region_id=ref.get("region_id"),
        url=ref["url"],
        enabled=ref.get("enabled", True),
        extra=_extra_of(ref, _ENDPOINT_COLUMNS),
    )
    session.add(endpoint)
    session.flush()
    runtime.changed(session)
    return rest.ApiResponse(201, {"endpoint": render_endpoint(endpoint)})


def list_endpoints(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    check_query(request, ENDPOINT_QUERY_SCHEMA)
    resources.enforce(request, "identity:list_endpoints")
    rows = session.scalars(select(models.Endpoint)).all()
    keys = ("interface", "service_id", "region_id")
    rendered = filter_refs(request, [render_endpoint(e) for e in rows], keys)
    return resources.limited(rendered, "endpoints", request, rendered)


def show_endpoint(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    resources.enforce(request, "identity:get_endpoint")
    endpoint = get_endpoint(session, request.path_params["endpoint_id"])
    return {"endpoint": render_endpoint(endpoint)}


def update_endpoint(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ref = dict(resources.body_of(request, "endpoint", ENDPOINT_UPDATE_SCHEMA))
    resources.enforce(request, "identity:update_endpoint")
    require_matching_id(ref, request.path_params["endpoint_id"])
    endpoint = get_endpoint(session, request.path_params["endpoint_id"])
    if "url" in ref:
        _check_url(ref["url"])
    _resolve_region(session, ref)
    _check_references(session, ref)
    for column in ("service_id", "interface", "url"):
        if column in ref:
            setattr(endpoint, column, ref[column])
    if "region_id" in ref:
        endpoint.region_id = ref["region_id"]
    if "enabled" in ref:
        endpoint.enabled = ref["enabled"]
    endpoint.extra = {**endpoint.extra, **_extra_of(ref, _ENDPOINT_COLUMNS)}
    session.flush()
    runtime.changed(session)
    return {"endpoint": render_endpoint(endpoint)}


def delete_endpoint_row(session: Session, endpoint: models.Endpoint) -> None:
    """Delete an endpoint and the project associations that name it."""
    session.query(models.ProjectEndpoint).filter(
        models.ProjectEndpoint.endpoint_id == endpoint.id
    ).delete()
    session.delete(endpoint)
    runtime.changed(session)


def delete_endpoint(request: rest.ApiRequest, session: Session) -> None:
    resources.enforce(request, "identity:delete_endpoint")
    delete_endpoint_row(session, get_endpoint(session, request.path_params["endpoint_id"]))


# Regions.

_REGION_COLUMNS = ("description", "parent_region_id")


def render_region(region: models.Region) -> dict[str, Any]:
    body: dict[str, Any] = dict(region.extra)
    body.update(
        {
            "id": region.id,
            "description": region.description or "",
            "parent_region_id": region.parent_region_id,
            "links": resources.self_link(f"/v3/regions/{region.id}"),
        }
    )
    return body


def get_region(session: Session, region_id: str) -> models.Region:
    return resources.get_or_404(session, models.Region, region_id, "region")


def _create_region_row(session: Session, ref: dict[str, Any]) -> models.Region:
    region_id = ref.get("id") or resources.new_id()
    if session.get(models.Region, region_id) is not None:
        raise errors.conflict("region", f"Duplicate ID, {region_id}")
    parent_id = ref.get("parent_region_id")
    if parent_id is not None:
        get_region(session, parent_id)
    region = models.Region(
        id=region_id,
        description=ref.get("description") or "",
        parent_region_id=parent_id,
        extra=_extra_of(ref, _REGION_COLUMNS),
    )
    session.add(region)
    session.flush()
    runtime.changed(session)
    return region


def create_region(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    ref = normalized(resources.body_of(request, "region", REGION_CREATE_SCHEMA))
    resources.enforce(request, "identity:create_region")
    return rest.ApiResponse(201, {"region": render_region(_create_region_row(session, ref))})


def put_region(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    """Create a region under the id the client chose (``PUT /v3/regions/{id}``)."""
    ref = normalized(resources.body_of(request, "region", REGION_CREATE_SCHEMA))
    resources.enforce(request, "identity:create_region")
    region_id = request.path_params["region_id"]
    if "id" in ref and ref["id"] != region_id:
        raise rest.BadRequest(f'Conflicting region IDs specified: "{region_id}" != "{ref["id"]}"')
    ref["id"] = region_id
    return rest.ApiResponse(201, {"region": render_region(_create_region_row(session, ref))})


def list_regions(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    check_query(request, REGION_QUERY_SCHEMA)
    resources.enforce(request, "identity:list_regions")
    rows = session.scalars(select(models.Region).order_by(models.Region.id)).all()
    rendered = filter_refs(request, [render_region(r) for r in rows], ("parent_region_id",))
    return resources.limited(rendered, "regions", request, rendered)


def show_region(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    resources.enforce(request, "identity:get_region")
    return {"region": render_region(get_region(session, request.path_params["region_id"]))}


def _check_no_cycle(session: Session, region_id: str, parent_id: str | None) -> None:
    seen: set[str] = set()
    while parent_id is not None and parent_id not in seen:
        if parent_id == region_id:
            raise rest.BadRequest(
                f"The specified parent region {parent_id} would create a circular region hierarchy."
            )
        seen.add(parent_id)
        parent = session.get(models.Region, parent_id)
        parent_id = parent.parent_region_id if parent is not None else None


def update_region(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    ref = resources.body_of(request, "region", REGION_UPDATE_SCHEMA)
    resources.enforce(request, "identity:update_region")
    region_id = request.path_params["region_id"]
    require_matching_id(ref, region_id)
    parent_id = ref.get("parent_region_id")
    if parent_id is not None:
        get_region(session, parent_id)
    region = get_region(session, region_id)
    if "parent_region_id" in ref:
        _check_no_cycle(session, region.id, parent_id)
        region.parent_region_id = parent_id
    if "description" in ref:
        region.description = ref["description"] or ""
    region.extra = {**region.extra, **_extra_of(ref, _REGION_COLUMNS)}
    session.flush()
    runtime.changed(session)
    return {"region": render_region(region)}


def _subtree(session: Session, region_id: str) -> list[models.Region]:
    """Every region below ``region_id``, parents before children (cycle-safe)."""
    found: list[models.Region] = []
    seen = {region_id}
    frontier = [region_id]
    while frontier:
        level = [
            r
            for r in session.scalars(
                select(models.Region).where(models.Region.parent_region_id.in_(frontier))
            )
            if r.id not in seen
        ]
        seen.update(r.id for r in level)
        found.extend(level)
        frontier = [r.id for r in level]
    return found


def delete_region(request: rest.ApiRequest, session: Session) -> None:
    resources.enforce(request, "identity:delete_region")
    region = get_region(session, request.path_params["region_id"])
    doomed = [region, *_subtree(session, region.id)]
    in_use = session.scalars(
        select(models.Endpoint.id)
        .where(models.Endpoint.region_id.in_([r.id for r in doomed]))
        .limit(1)
    ).first()
    if in_use is not None:
        raise rest.Forbidden(
            f"Unable to delete region {region.id} because it or its child regions have "
            "associated endpoints."
        )
    # Children go with their parent, as in Keystone.
    for row in reversed(doomed):
        session.delete(row)
    runtime.changed(session)


ROUTES = [
    rest.Route("POST", "/v3/services", create_service),
    rest.Route("GET", "/v3/services", list_services),
    rest.Route("GET", "/v3/services/{service_id}", show_service),
    rest.Route("PATCH", "/v3/services/{service_id}", update_service),
    rest.Route("DELETE", "/v3/services/{service_id}", delete_service),
    rest.Route("POST", "/v3/endpoints", create_endpoint),
    rest.Route("GET", "/v3/endpoints", list_endpoints),
    rest.Route("GET", "/v3/endpoints/{endpoint_id}", show_endpoint),
    rest.Route("PATCH", "/v3/endpoints/{endpoint_id}", update_endpoint),
    rest.Route("DELETE", "/v3/endpoints/{endpoint_id}", delete_endpoint),
    rest.Route("POST", "/v3/regions", create_region),
    rest.Route("GET", "/v3/regions", list_regions),
    rest.Route("GET", "/v3/regions/{region_id}", show_region),
    rest.Route("PUT", "/v3/regions/{region_id}", put_region),
    rest.Route("PATCH", "/v3/regions/{region_id}", update_region),
    rest.Route("DELETE", "/v3/regions/{region_id}", delete_region),
]
