"""IPAM under concurrency, through the API: many clients creating ports (or subnets
from one pool) at once never get one address (or prefix) twice, fail cleanly with
Neutron's 409s once the pool or the quota is used up, and never pass the quota.

Every test runs on SQLite and on PostgreSQL (when STACKBOX_TEST_POSTGRES names a
server: `make test` starts one), each time in a fresh cloud on a fresh database.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import cloudfixture, postgres

CLIENTS = 16
CREATES = 200


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_cloud(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[cloudfixture.Cloud]:
    """A fresh cloud for one test, on a fresh SQLite file or PostgreSQL database."""
    if request.param == "sqlite":
        with cloudfixture.in_process(tmp_path) as cloud:
            yield cloud
        return
    if not postgres.DSN:
        pytest.skip(postgres.SKIP_REASON)
    with postgres.fresh_database() as url, cloudfixture.in_process(tmp_path, database_url=url) as c:
        yield c


def _client(cloud: cloudfixture.Cloud, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=cloud.base_url + "/networking/v2.0",
        headers={"X-Auth-Token": token},
        timeout=120,
    )


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def _network_with_subnet(
    client: httpx.Client, cidr: str, pools: list[dict[str, str]] | None = None
) -> tuple[str, str]:
    network = _ok(client.post("/networks", json={"network": {"name": "ipam"}}), 201)["network"]
    body: dict[str, Any] = {"network_id": network["id"], "cidr": cidr, "ip_version": 4}
    if pools is not None:
        body["allocation_pools"] = pools
    subnet = _ok(client.post("/subnets", json={"subnet": body}), 201)["subnet"]
    return network["id"], subnet["id"]


def _in_parallel(cloud: cloudfixture.Cloud, token: str, bodies: list[dict[str, Any]], path: str):  # type: ignore[no-untyped-def]
    """POST every body from CLIENTS clients at once; the responses, in order."""
    clients = [_client(cloud, token) for _ in range(CLIENTS)]
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            return list(
                pool.map(
                    lambda i: clients[i % CLIENTS].post(path, json=bodies[i]), range(len(bodies))
                )
            )
    finally:
        for client in clients:
            client.close()


def _addresses(responses: list[httpx.Response]) -> list[str]:
    return [
        ip["ip_address"]
        for r in responses
        if r.status_code == 201
        for ip in r.json()["port"]["fixed_ips"]
    ]


def _used(admin: httpx.Client, subnet_id: str) -> set[str]:
    """Every address held on the subnet, as the port listing shows them."""
    ports = _ok(admin.get("/ports", params={"fixed_ips": f"subnet_id={subnet_id}"}))["ports"]
    return {
        ip["ip_address"] for p in ports for ip in p["fixed_ips"] if ip["subnet_id"] == subnet_id
    }


def _projects(count: int) -> list[str]:
    # Ports of different projects: their quota checks do not queue them one after another,
    # so the addresses themselves are raced for.
    return [f"ipam-race-{i:02d}" for i in range(count)]


def test_parallel_port_creates_get_distinct_addresses_until_the_pool_is_empty(
    backend_cloud: cloudfixture.Cloud,
) -> None:
    cloud = backend_cloud
    token = cloud.token()
    admin = _client(cloud, token)
    # A /24 whose pool holds 150 addresses: 200 creates must run it dry.
    pool = {"start": "10.77.0.10", "end": "10.77.0.159"}
    network_id, subnet_id = _network_with_subnet(admin, "10.77.0.0/24", [pool])
    before = _used(admin, subnet_id)
    in_pool = {str(ipaddress.ip_address(pool["start"]) + i) for i in range(150)}
    free = 150 - len(before & in_pool)
    projects = _projects(CLIENTS)
    bodies = [
        {"port": {"network_id": network_id, "project_id": projects[i % CLIENTS]}}
        for i in range(CREATES)
    ]

    responses = _in_parallel(cloud, token, bodies, "/ports")

    unexpected = [r.text for r in responses if r.status_code not in (201, 409)]
    assert not unexpected
    made = _addresses(responses)
    assert len(made) == len(set(made)), "an address was handed out twice"
    assert len(made) == free
    assert set(made) <= in_pool
    refused = [r.json()["NeutronError"]["type"] for r in responses if r.status_code == 409]
    assert refused == ["IpAddressGenerationFailure"] * (CREATES - free)
    # What the database holds agrees with what the clients were told.
    assert _used(admin, subnet_id) == before | set(made)
    availability = _ok(admin.get(f"/network-ip-availabilities/{network_id}"))
    assert availability["network_ip_availability"]["used_ips"] == len(before) + free
    # A freed address is handed out again.
    first = next(r.json()["port"] for r in responses if r.status_code == 201)
    _ok(admin.delete(f"/ports/{first['id']}"), 204)
    again = _ok(admin.post("/ports", json={"port": {"network_id": network_id}}), 201)["port"]
    assert again["fixed_ips"][0]["ip_address"] == first["fixed_ips"][0]["ip_address"]


def test_parallel_port_creates_stop_at_the_quota(backend_cloud: cloudfixture.Cloud) -> None:
    cloud = backend_cloud
    token = cloud.token("demo", project="demo")
    admin = _client(cloud, cloud.token())
    member = _client(cloud, token)
    network_id, _ = _network_with_subnet(member, "10.78.0.0/24")
    project_id = _ok(member.get(f"/networks/{network_id}"))["network"]["project_id"]
    owned = len(_ok(admin.get("/ports", params={"project_id": project_id}))["ports"])
    _ok(admin.put(f"/quotas/{project_id}", json={"quota": {"port": owned + 100}}))

    responses = _in_parallel(
        cloud, token, [{"port": {"network_id": network_id}} for _ in range(CREATES)], "/ports"
    )

    assert {r.status_code for r in responses} <= {201, 409}
    made = _addresses(responses)
    assert len(made) == len(set(made)) == 100
    refused = {r.json()["NeutronError"]["type"] for r in responses if r.status_code == 409}
    assert refused == {"OverQuota"}
    assert len(_ok(admin.get("/ports", params={"project_id": project_id}))["ports"]) == owned + 100


def test_parallel_requests_for_one_address_have_one_winner(
    backend_cloud: cloudfixture.Cloud,
) -> None:
    cloud = backend_cloud
    token = cloud.token()
    network_id, _ = _network_with_subnet(_client(cloud, token), "10.79.0.0/24")
    bodies = [
        {
            "port": {
                "network_id": network_id,
                "project_id": project,
                "fixed_ips": [{"ip_address": "10.79.0.42"}],
            }
        }
        for project in _projects(32)
    ]

    responses = _in_parallel(cloud, token, bodies, "/ports")

    assert sorted(r.status_code for r in responses) == [201] + [409] * 31
    assert {r.json()["NeutronError"]["type"] for r in responses if r.status_code == 409} == {
        "IpAddressAlreadyAllocated"
    }


def test_parallel_subnets_from_one_pool_never_overlap(backend_cloud: cloudfixture.Cloud) -> None:
    cloud = backend_cloud
    token = cloud.token("demo", project="demo")
    member = _client(cloud, token)
    pool = _ok(
        member.post(
            "/subnetpools",
            json={
                "subnetpool": {"name": "p", "prefixes": ["10.80.0.0/22"], "default_prefixlen": 26}
            },
        ),
        201,
    )["subnetpool"]
    networks = [
        _ok(member.post("/networks", json={"network": {"name": f"n{i}"}}), 201)["network"]["id"]
        for i in range(20)
    ]
    bodies = [
        {"subnet": {"network_id": n, "ip_version": 4, "subnetpool_id": pool["id"]}}
        for n in networks
    ]

    responses = _in_parallel(cloud, token, bodies, "/subnets")

    # A /22 holds sixteen /26s: sixteen subnets, then the pool is exhausted.
    assert sorted(r.status_code for r in responses) == [201] * 16 + [409] * 4
    cidrs = [
        ipaddress.ip_network(r.json()["subnet"]["cidr"]) for r in responses if r.status_code == 201
    ]
    assert len(set(cidrs)) == 16
    assert all(n.subnet_of(ipaddress.ip_network("10.80.0.0/22")) for n in cidrs)
    assert not any(a.overlaps(b) for i, a in enumerate(cidrs) for b in cidrs[i + 1 :])
