"""The identity service as the web layer sees it: prefix, routes, error format."""

from __future__ import annotations

from stackbox import rest
from stackbox.identity import (
    app_creds,
    auth_api,
    catalog_admin,
    credentials,
    domain_configs,
    domains,
    endpoint_groups,
    errors,
    grants,
    groups,
    oauth1,
    policy_blobs,
    projects,
    role_assignments,
    roles,
    trusts,
    users,
)

# One module per resource family; each exports ROUTES.
MODULES = (
    auth_api,
    users,
    projects,
    domains,
    domain_configs,
    groups,
    roles,
    grants,
    role_assignments,
    catalog_admin,
    endpoint_groups,
    credentials,
    policy_blobs,
    oauth1,
    app_creds,
    trusts,
)

PREFIX = "/identity"


def service() -> rest.ServiceApi:
    routes: list[rest.Route] = []
    for module in MODULES:
        routes.extend(module.ROUTES)
    return rest.ServiceApi(
        name="identity",
        prefix=PREFIX,
        routes=routes,
        render_error=errors.render,
        headers={"Vary": "X-Auth-Token"},
    )


authenticator = auth_api.TokenAuthenticator
