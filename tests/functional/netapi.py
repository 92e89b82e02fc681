"""Plain-HTTP helpers for the networking tests of subnets, pools and IPAM: clients as
admin, demo and alt_demo, Neutron error checks, and small resource makers."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from tests import cloudfixture

_cidrs = itertools.count(1)


def fresh_v4() -> str:
    """A /24 no other caller in this test process has had."""
    n = next(_cidrs)
    return f"10.{150 + n // 250}.{n % 250}.0/24"


def client(cloud: cloudfixture.Cloud, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=cloud.base_url + "/networking/v2.0", headers={"X-Auth-Token": token}, timeout=60
    )


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def refused(response: httpx.Response, status: int, kind: str | None = None) -> str:
    assert response.status_code == status, response.text
    error = response.json()["NeutronError"]
    if kind is not None:
        assert error["type"] == kind, error
    return str(error["message"])


def network(client: httpx.Client, **extra: Any) -> dict[str, Any]:
    body = {"name": "net", **extra}
    return ok(client.post("/networks", json={"network": body}), 201)["network"]  # type: ignore[no-any-return]


def subnet(client: httpx.Client, network_id: str, **extra: Any) -> dict[str, Any]:
    body = {"network_id": network_id, "ip_version": 4, **extra}
    if "cidr" not in body and "subnetpool_id" not in body and "use_default_subnetpool" not in body:
        body["cidr"] = fresh_v4()
    return ok(client.post("/subnets", json={"subnet": body}), 201)["subnet"]  # type: ignore[no-any-return]


def post_subnet(client: httpx.Client, network_id: str, **extra: Any) -> httpx.Response:
    return client.post("/subnets", json={"subnet": {"network_id": network_id, **extra}})


def port(client: httpx.Client, network_id: str, **extra: Any) -> dict[str, Any]:
    body = {"network_id": network_id, **extra}
    return ok(client.post("/ports", json={"port": body}), 201)["port"]  # type: ignore[no-any-return]
