"""The compute service as the web layer sees it: prefix, version documents,
microversion negotiation, routes and Nova's error format."""

from __future__ import annotations

from typing import Any

from stackbox import rest
from stackbox.compute import (
    aggregates,
    availability_zones,
    diagnostics,
    errors,
    extensions,
    flavor_access,
    flavor_extra_specs,
    flavors,
    floating_ips,
    hypervisors,
    images,
    instance_actions,
    interfaces,
    keypairs,
    limits,
    microversions,
    migrations,
    networks,
    quota_classes,
    quota_sets,
    runtime,
    security_groups,
    server_actions,
    server_external_events,
    server_groups,
    server_ips,
    server_list,
    server_metadata,
    server_password,
    server_tags,
    servers,
    services,
    usage,
    usage_audit,
    volume_attachments,
)

PREFIX = "/compute"


def _base() -> str:
    return f"{runtime.get().base_url}{PREFIX}"


def versions(request: rest.ApiRequest, session: object) -> dict[str, Any]:
    return {
        "versions": [
            microversions.legacy_version_document(_base()),
            microversions.version_document(_base()),
        ]
    }


def version_v2(request: rest.ApiRequest, session: object) -> dict[str, Any]:
    return {"version": microversions.legacy_version_document(_base())}


def version_v21(request: rest.ApiRequest, session: object) -> dict[str, Any]:
    return {"version": microversions.version_document(_base())}


# One module per resource family; each exports ROUTES. Collections before members
# where paths overlap is not needed: routes match whole paths.
MODULES = (
    flavors,
    flavor_access,
    flavor_extra_specs,
    keypairs,
    server_list,
    servers,
    server_metadata,
    server_tags,
    server_ips,
    server_actions,
    instance_actions,
    interfaces,
    volume_attachments,
    availability_zones,
    aggregates,
    hypervisors,
    services,
    limits,
    quota_sets,
    quota_classes,
    server_groups,
    usage,
    migrations,
    extensions,
    security_groups,
    images,
    floating_ips,
    networks,
    usage_audit,
    server_external_events,
    diagnostics,
    server_password,
)


def service() -> rest.ServiceApi:
    routes = [
        rest.Route("GET", "/", versions, auth=False, no_db=True),
        rest.Route("GET", "/v2.1", version_v21, auth=False, no_db=True),
        rest.Route("GET", "/v2", version_v2, auth=False, no_db=True),
    ]
    for module in MODULES:
        routes.extend(module.ROUTES)
    return rest.ServiceApi(
        name="compute",
        prefix=PREFIX,
        routes=routes,
        render_error=errors.render,
        negotiate=microversions.negotiate,
        request_id_header="x-compute-request-id",
    )
