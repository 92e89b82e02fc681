"""The identity service as the web layer sees it: prefix, routes, error format."""

from __future__ import annotations

from stackbox import rest
from stackbox.identity import auth_api, domains, errors, projects, users

PREFIX = "/identity"


def service() -> rest.ServiceApi:
    routes: list[rest.Route] = []
    for module in (auth_api, users, projects, domains):
        routes.extend(module.ROUTES)
    return rest.ServiceApi(
        name="identity",
        prefix=PREFIX,
        routes=routes,
        render_error=errors.render,
        headers={"Vary": "X-Auth-Token"},
    )


authenticator = auth_api.TokenAuthenticator
