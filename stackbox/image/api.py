"""The image service as the web layer sees it: prefix, routes, error format, versions."""

from __future__ import annotations

from typing import Any

from stackbox import rest
from stackbox.image import (
    cache_api,
    data,
    errors,
    images,
    imports,
    listing,
    members,
    metadefs,
    runtime,
    schemas,
    tasks,
    updates,
)

PREFIX = "/image"
# Glance's API versions: the newest is CURRENT, the rest SUPPORTED.
VERSIONS = (
    "2.17",
    "2.16",
    "2.15",
    "2.14",
    "2.13",
    "2.12",
    "2.11",
    "2.10",
    "2.9",
    "2.8",
    "2.7",
    "2.6",
    "2.5",
    "2.4",
    "2.3",
    "2.2",
    "2.1",
    "2.0",
)


def _versions() -> list[dict[str, Any]]:
    href = f"{runtime.get().base_url}{PREFIX}/v2/"
    return [
        {
            "id": f"v{number}",
            "status": "CURRENT" if i == 0 else "SUPPORTED",
            "links": [{"rel": "self", "href": href}],
        }
        for i, number in enumerate(VERSIONS)
    ]


def versions(request: rest.ApiRequest, session: object) -> rest.ApiResponse:
    return rest.ApiResponse(300, {"versions": _versions()})


def versions_v2(request: rest.ApiRequest, session: object) -> dict[str, Any]:
    return {"versions": _versions()}


# One module per resource family; each exports ROUTES.
MODULES = (images, updates, listing, members, schemas, data, imports, metadefs, cache_api, tasks)


def service() -> rest.ServiceApi:
    routes = [
        rest.Route("GET", "/", versions, auth=False, no_db=True),
        rest.Route("GET", "/versions", versions_v2, auth=False, no_db=True),
        rest.Route("GET", "/v2", versions_v2, auth=False, no_db=True),
    ]
    for module in MODULES:
        routes.extend(module.ROUTES)
    return rest.ServiceApi(name="image", prefix=PREFIX, routes=routes, render_error=errors.render)
