"""GET /v2.0/service-providers: the providers of Neutron's advanced services.

stackbox's one such service is L3 routing, served by its own router implementation;
it is listed as Neutron lists its L3 providers (``L3_ROUTER_NAT``), under the name of
Neutron's single-node provider, which is what stackbox's routers are.
"""

from __future__ import annotations

from typing import Any

from stackbox import rest
from stackbox.network import attributes as A
from stackbox.network import common

ATTRS = A.spec(
    A.Attr("service_type", sort=True),
    A.Attr("name", sort=True),
    A.Attr("default", sort=True),
)
PROVIDERS = [{"service_type": "L3_ROUTER_NAT", "name": "single_node", "default": True}]


def list_providers(request: rest.ApiRequest, session: object) -> dict[str, Any]:
    common.enforce(request, "get_service_provider", {"project_id": request.context.project_id})
    bodies = [dict(p) for p in PROVIDERS]
    return common.collection(request, "service_providers", bodies, ATTRS)


ROUTES = [rest.Route("GET", "/v2.0/service-providers", list_providers, no_db=True)]
