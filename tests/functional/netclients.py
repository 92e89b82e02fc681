"""Plain-HTTP helpers for the networking functional tests: clients as admin, demo and
alt_demo (module fixtures), Neutron's error body, and quick network/subnet creation."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests import cloudfixture

CIDRS = (f"10.{i // 256}.{i % 256}.0/24" for i in itertools.count(20))


def client(cloud: cloudfixture.Cloud, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=cloud.base_url + "/networking/v2.0", headers={"X-Auth-Token": token}, timeout=30
    )


@pytest.fixture(scope="module")
def admin_http(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with client(cloud, cloud.token()) as http:
        yield http


@pytest.fixture(scope="module")
def demo_http(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with client(cloud, cloud.token("demo", project="demo")) as http:
        yield http


@pytest.fixture(scope="module")
def alt_http(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with client(cloud, cloud.token("alt_demo", project="alt_demo")) as http:
        yield http


def made(response: httpx.Response, key: str, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return dict(response.json()[key])


def neutron_error(response: httpx.Response, status: int, kind: str | None = None) -> str:
    assert response.status_code == status, response.text
    error = response.json()["NeutronError"]
    if kind:
        assert error["type"] == kind, error
    return str(error["message"])


def network(http: httpx.Client, **attrs: Any) -> dict[str, Any]:
    return made(http.post("/networks", json={"network": {"name": "n", **attrs}}), "network")


def subnet(http: httpx.Client, network_id: str, cidr: str | None = None, **attrs: Any) -> dict:
    body = {"network_id": network_id, "cidr": cidr or next(CIDRS), "ip_version": 4, **attrs}
    return made(http.post("/subnets", json={"subnet": body}), "subnet")
