"""tempest.conf's network facts, read from the running cloud (and its public network ensured).

Tempest gives every test project a router whose gateway is on ``[network]
public_network_id``, so the cloud must have an external network before Tempest starts.
A fresh stackbox makes one called ``public`` on first start; should it not exist, the
runner creates it as admin, as DevStack does: flat on physical network ``public``,
subnet 172.24.4.0/24 without DHCP. ``[network-feature-enabled] api_extensions`` is the
cloud's own ``/v2.0/extensions`` list, so Tempest tests exactly what is served.
"""

from __future__ import annotations

from tempestgate.adminapi import AdminApi
from tempestgate.cloud import Cloud

PUBLIC_NAME = "public"
PUBLIC_PHYSNET = "public"
PUBLIC_CIDR = "172.24.4.0/24"
PUBLIC_GATEWAY = "172.24.4.1"


def _api(cloud: Cloud) -> AdminApi:
    return AdminApi(cloud, cloud.endpoint("network").removesuffix("/v2.0") + "/v2.0")


def extensions(api: AdminApi) -> list[str]:
    return sorted(e["alias"] for e in api.call("GET", "/extensions")["extensions"])


def public_network(api: AdminApi) -> tuple[str, bool]:
    """The id of the external network named ``public`` (with a subnet), creating what is
    missing; and whether the runner had to create anything."""
    found = api.call("GET", f"/networks?name={PUBLIC_NAME}&router:external=True")["networks"]
    created = not found
    if found:
        network = found[0]
    else:
        network = api.call(
            "POST",
            "/networks",
            {
                "network": {
                    "name": PUBLIC_NAME,
                    "router:external": True,
                    "provider:network_type": "flat",
                    "provider:physical_network": PUBLIC_PHYSNET,
                }
            },
        )["network"]
    if not network.get("subnets"):
        created = True
        api.call(
            "POST",
            "/subnets",
            {
                "subnet": {
                    "name": f"{PUBLIC_NAME}-subnet",
                    "network_id": network["id"],
                    "ip_version": 4,
                    "cidr": PUBLIC_CIDR,
                    "gateway_ip": PUBLIC_GATEWAY,
                    "enable_dhcp": False,
                }
            },
        )
    return str(network["id"]), created


def options(cloud: Cloud) -> dict[tuple[str, str], str]:
    """``[network]`` and ``[network-feature-enabled]`` values that come from the cloud."""
    api = _api(cloud)
    network_id, created = public_network(api)
    if created:
        print(f"tempest: set up the external network {PUBLIC_NAME} ({network_id})", flush=True)
    return {
        ("network", "public_network_id"): network_id,
        ("network", "floating_network_name"): PUBLIC_NAME,
        ("network-feature-enabled", "api_extensions"): ",".join(extensions(api)),
    }
