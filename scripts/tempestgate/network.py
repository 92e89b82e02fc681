"""tempest.conf's network facts, read from the running cloud (and its public network ensured).

Tempest gives every test project a router whose gateway is on ``[network]
public_network_id``, so the cloud must have an external network before Tempest starts.
A fresh stackbox makes one called ``public`` on first start; should it not exist, the
runner creates it as admin, as DevStack does: flat on physical network ``public``,
subnet 172.24.4.0/24 without DHCP. ``[network-feature-enabled] api_extensions`` is the
cloud's own ``/v2.0/extensions`` list, so Tempest tests exactly what is served.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from tempestgate.cloud import Cloud, CloudError

PUBLIC_NAME = "public"
PUBLIC_PHYSNET = "public"
PUBLIC_CIDR = "172.24.4.0/24"
PUBLIC_GATEWAY = "172.24.4.1"


class _Api:
    """Admin calls to the cloud's networking API (urllib: the runner has no other client)."""

    def __init__(self, cloud: Cloud) -> None:
        self.base = _endpoint(cloud).rstrip("/") + "/v2.0"
        self.token = _admin_token(cloud)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            self.base + path,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"X-Auth-Token": self.token, "Content-Type": "application/json"},
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise CloudError(f"{method} {path}: {exc.code} {detail}") from None


def _endpoint(cloud: Cloud) -> str:
    for endpoint in cloud.catalog.get("network", []):
        if endpoint.get("interface") == "public":
            return str(endpoint["url"]).rstrip("/").removesuffix("/v2.0")
    raise CloudError("the catalog has no public network endpoint")


def _admin_token(cloud: Cloud) -> str:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": "admin",
                        "domain": {"id": "default"},
                        "password": cloud.admin_password,
                    }
                },
            },
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
        }
    }
    request = urllib.request.Request(
        f"{cloud.identity_v3}/auth/tokens",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(response.headers["X-Subject-Token"])
    except urllib.error.HTTPError as exc:
        raise CloudError(f"admin cannot authenticate: {exc.code}") from None


def extensions(api: _Api) -> list[str]:
    return sorted(e["alias"] for e in api.call("GET", "/extensions")["extensions"])


def public_network(api: _Api) -> tuple[str, bool]:
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
    api = _Api(cloud)
    network_id, created = public_network(api)
    if created:
        print(f"tempest: set up the external network {PUBLIC_NAME} ({network_id})", flush=True)
    return {
        ("network", "public_network_id"): network_id,
        ("network", "floating_network_name"): PUBLIC_NAME,
        ("network-feature-enabled", "api_extensions"): ",".join(extensions(api)),
    }
