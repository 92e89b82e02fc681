"""The networking service as the web layer sees it: prefix, routes, errors, versions."""

from __future__ import annotations

from typing import Any

from stackbox import rest
from stackbox.network import (
    address_scopes,
    agents,
    availability_zones,
    errors,
    extensions,
    floatingips,
    ip_availability,
    networks,
    port_forwardings,
    ports,
    quotas_api,
    rbac_api,
    routers,
    runtime,
    security_groups,
    subnetpools,
    subnets,
    tags_api,
)

PREFIX = "/networking"
COLLECTIONS = (
    ("network", "networks"),
    ("subnet", "subnets"),
    ("port", "ports"),
    ("subnetpool", "subnetpools"),
    ("router", "routers"),
    ("floatingip", "floatingips"),
    ("security_group", "security_groups"),
    ("security_group_rule", "security_group_rules"),
)


def versions(request: rest.ApiRequest, session: object) -> dict[str, Any]:
    href = f"{runtime.get().base_url}{PREFIX}/v2.0/"
    return {
        "versions": [{"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": href}]}]
    }


def resources(request: rest.ApiRequest, session: object) -> dict[str, Any]:
    base = f"{runtime.get().base_url}{PREFIX}/v2.0"
    return {
        "resources": [
            {
                "name": name,
                "collection": plural,
                "links": [{"rel": "self", "href": f"{base}/{plural}"}],
            }
            for name, plural in COLLECTIONS
        ]
    }


# One module per resource family; each exports ROUTES.
MODULES = (
    extensions,
    networks,
    subnets,
    subnetpools,
    address_scopes,
    ports,
    routers,
    floatingips,
    port_forwardings,
    security_groups,
    quotas_api,
    agents,
    availability_zones,
    tags_api,
    rbac_api,
    ip_availability,
)


def service() -> rest.ServiceApi:
    routes = [
        rest.Route("GET", "/", versions, auth=False, no_db=True),
        rest.Route("GET", "/v2.0", resources, no_db=True),
    ]
    for module in MODULES:
        routes.extend(module.ROUTES)
    return rest.ServiceApi(name="network", prefix=PREFIX, routes=routes, render_error=errors.render)
