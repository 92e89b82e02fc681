"""The deprecated network proxies (``os-networks``, ``os-tenant-networks``, up to 2.35):
the Networking service's networks the caller may see, as Nova shows them since
nova-network went away (an id and a label; every other field null, or ``"None"`` for a
tenant network's cidr). Creating, deleting and (dis)associating networks were
nova-network's: Nova answers 410 Gone for them at every version, and so does stackbox.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from stackbox import policy, rest
from stackbox.compute import common, errors, proxy_calls
from stackbox.network import networks as net_networks

# The fields Nova's os-networks still shows (all null but id and label); admins get more.
FIELDS = (
    "id",
    "cidr",
    "netmask",
    "gateway",
    "broadcast",
    "dns1",
    "dns2",
    "cidr_v6",
    "gateway_v6",
    "label",
    "netmask_v6",
)
ADMIN_FIELDS = (
    "created_at",
    "updated_at",
    "deleted_at",
    "deleted",
    "injected",
    "bridge",
    "vlan",
    "vpn_public_address",
    "vpn_public_port",
    "vpn_private_address",
    "dhcp_start",
    "project_id",
    "host",
    "bridge_interface",
    "multi_host",
    "priority",
    "rxtx_base",
    "mtu",
    "dhcp_server",
    "enable_dhcp",
    "share_address",
)


def _networks(request: rest.ApiRequest, session: Session) -> list[dict[str, Any]]:
    """Every network the Networking service lists for the caller."""
    sub = proxy_calls.sub_request(request, query={"fields": ["id", "name"]}, method="GET")
    try:
        return list(net_networks.list_networks(sub, session)["networks"])
    except rest.ApiError as exc:
        raise proxy_calls.nova_error(exc) from None


def _network(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    network_id = request.path_params["network_id"]
    sub = proxy_calls.sub_request(request, path_params={"network_id": network_id}, method="GET")
    try:
        return dict(net_networks.show(sub, session)["network"])
    except (rest.NotFound, policy.PolicyNotAuthorized):
        raise errors.not_found("Network not found") from None


def network_view(request: rest.ApiRequest, network: dict[str, Any]) -> dict[str, Any]:
    fields = FIELDS + (ADMIN_FIELDS if common.is_admin(request.context) else ())
    view: dict[str, Any] = dict.fromkeys(fields)
    view["id"] = network["id"]
    view["label"] = network.get("name")
    return view


def tenant_network_view(network: dict[str, Any]) -> dict[str, Any]:
    # "None" as a string: what Nova has answered since it proxied to Neutron.
    return {"id": network["id"], "cidr": "None", "label": network.get("name")}


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    proxy_calls.require_proxy(request)
    common.enforce(request, "os_compute_api:os-networks:list")
    return {"networks": [network_view(request, n) for n in _networks(request, session)]}


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    proxy_calls.require_proxy(request)
    common.enforce(request, "os_compute_api:os-networks:show")
    return {"network": network_view(request, _network(request, session))}


def tenant_index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    proxy_calls.require_proxy(request)
    common.enforce(request, "os_compute_api:os-tenant-networks:list")
    return {"networks": [tenant_network_view(n) for n in _networks(request, session)]}


def tenant_show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    proxy_calls.require_proxy(request)
    common.enforce(request, "os_compute_api:os-tenant-networks:show")
    return {"network": tenant_network_view(_network(request, session))}


def removed(request: rest.ApiRequest, session: Session) -> None:
    """nova-network's calls, removed in Nova 21.0.0: 410 at every version."""
    raise proxy_calls.gone()


ROUTES: list[rest.Route] = [
    rest.Route("GET", "/v2.1/os-networks", index),
    rest.Route("POST", "/v2.1/os-networks", removed),
    rest.Route("POST", "/v2.1/os-networks/add", removed),
    rest.Route("GET", "/v2.1/os-networks/{network_id}", show),
    rest.Route("DELETE", "/v2.1/os-networks/{network_id}", removed),
    rest.Route("POST", "/v2.1/os-networks/{network_id}/action", removed),
    rest.Route("GET", "/v2.1/os-tenant-networks", tenant_index),
    rest.Route("POST", "/v2.1/os-tenant-networks", removed),
    rest.Route("GET", "/v2.1/os-tenant-networks/{network_id}", tenant_show),
    rest.Route("DELETE", "/v2.1/os-tenant-networks/{network_id}", removed),
]
