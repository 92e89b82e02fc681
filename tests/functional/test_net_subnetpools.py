"""Subnet pools (carving, bounds, quotas, defaults, prefix operations), address scopes
and network IP availability through the Neutron API."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests import cloudfixture
from tests.functional import netapi
from tests.functional.netapi import network, ok, post_subnet, refused, subnet


@pytest.fixture(scope="module")
def admin_http(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with netapi.client(cloud, cloud.token()) as client:
        yield client


@pytest.fixture(scope="module")
def demo(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with netapi.client(cloud, cloud.token("demo", project="demo")) as client:
        yield client


@pytest.fixture(scope="module")
def alt(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with netapi.client(cloud, cloud.token("alt_demo", project="alt_demo")) as client:
        yield client


def pool(client: httpx.Client, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "pool")
    return ok(client.post("/subnetpools", json={"subnetpool": body}), 201)["subnetpool"]  # type: ignore[no-any-return]


def scope(client: httpx.Client, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "scope")
    body.setdefault("ip_version", 4)
    return ok(client.post("/address-scopes", json={"address_scope": body}), 201)["address_scope"]  # type: ignore[no-any-return]


# --- subnet pools ---------------------------------------------------------------------------


def test_pool_defaults_and_compacted_prefixes(demo: httpx.Client) -> None:
    made = pool(demo, prefixes=["10.40.1.0/24", "10.40.0.0/24", "10.40.0.7/25"])
    assert made["prefixes"] == ["10.40.0.0/23"]
    assert made["ip_version"] == 4
    assert (made["min_prefixlen"], made["max_prefixlen"], made["default_prefixlen"]) == (
        "8",
        "32",
        "8",
    )
    assert made["is_default"] is False and made["shared"] is False
    assert made["default_quota"] is None and made["address_scope_id"] is None
    v6 = pool(demo, prefixes=["2001:db8:40::/48"])
    assert (v6["ip_version"], v6["min_prefixlen"], v6["max_prefixlen"]) == (6, "64", "128")
    assert ok(demo.get(f"/subnetpools/{made['id']}"))["subnetpool"] == made


def test_pool_requests_are_validated(demo: httpx.Client) -> None:
    cases = [
        ({"prefixes": []}, "EmptySubnetPoolPrefixList"),
        ({"prefixes": ["10.41.0.0/24", "2001:db8::/64"]}, "PrefixVersionMismatch"),
        (
            {"prefixes": ["10.41.0.0/24"], "min_prefixlen": 28, "max_prefixlen": 24},
            "IllegalSubnetPoolPrefixBounds",
        ),
        ({"prefixes": ["10.41.0.0/24"], "max_prefixlen": 33}, "IllegalSubnetPoolPrefixBounds"),
        (
            {"prefixes": ["10.41.0.0/24"], "min_prefixlen": 24, "default_prefixlen": 20},
            "IllegalSubnetPoolPrefixBounds",
        ),
        ({"prefixes": ["bogus"]}, "InvalidInput"),
        ({"prefixes": ["10.41.0.0/24"], "address_scope_id": "foo"}, "InvalidInput"),
    ]
    for body, kind in cases:
        refused(demo.post("/subnetpools", json={"subnetpool": {"name": "p", **body}}), 400, kind)
    refused(demo.post("/subnetpools", json={"subnetpool": {"prefixes": ["10.41.0.0/24"]}}), 400)
    refused(
        demo.post(
            "/subnetpools",
            json={"subnetpool": {"name": "p", "prefixes": ["10.41.0.0/24"], "shared": True}},
        ),
        403,
    )
    refused(
        demo.post(
            "/subnetpools",
            json={"subnetpool": {"name": "p", "prefixes": ["10.41.0.0/24"], "is_default": True}},
        ),
        403,
    )


def test_subnets_are_carved_from_the_pool(demo: httpx.Client) -> None:
    made = pool(
        demo, prefixes=["10.42.0.0/22"], default_prefixlen=26, min_prefixlen=24, max_prefixlen=28
    )
    net_id = network(demo)["id"]
    first = subnet(demo, net_id, subnetpool_id=made["id"])
    assert first["cidr"] == "10.42.0.0/26"
    assert first["gateway_ip"] == "10.42.0.1"
    assert first["subnetpool_id"] == made["id"]
    second = subnet(demo, network(demo)["id"], subnetpool_id=made["id"], prefixlen=28)
    assert second["cidr"] == "10.42.0.64/28"  # the smallest free block that holds it
    third = subnet(demo, network(demo)["id"], subnetpool_id=made["id"])
    assert third["cidr"] == "10.42.0.128/26"
    specific = subnet(demo, network(demo)["id"], subnetpool_id=made["id"], cidr="10.42.2.0/24")
    assert specific["cidr"] == "10.42.2.0/24"
    refused(
        post_subnet(
            demo, network(demo)["id"], ip_version=4, subnetpool_id=made["id"], cidr="10.42.2.0/26"
        ),
        409,
        "SubnetAllocationError",
    )
    refused(
        post_subnet(
            demo, network(demo)["id"], ip_version=4, subnetpool_id=made["id"], cidr="10.43.0.0/24"
        ),
        409,
        "SubnetAllocationError",
    )
    refused(
        post_subnet(
            demo, network(demo)["id"], ip_version=4, subnetpool_id=made["id"], prefixlen=29
        ),
        400,
        "MaxPrefixSubnetAllocationError",
    )
    refused(
        post_subnet(
            demo, network(demo)["id"], ip_version=4, subnetpool_id=made["id"], prefixlen=23
        ),
        400,
        "MinPrefixSubnetAllocationError",
    )
    refused(post_subnet(demo, network(demo)["id"], ip_version=6, subnetpool_id=made["id"]), 400)
    refused(
        post_subnet(
            demo,
            network(demo)["id"],
            ip_version=4,
            subnetpool_id=made["id"],
            cidr="10.42.3.0/24",
            prefixlen=24,
        ),
        400,
    )
    refused(
        post_subnet(
            demo,
            network(demo)["id"],
            ip_version=4,
            subnetpool_id=made["id"],
            allocation_pools=[{"start": "10.42.3.5", "end": "10.42.3.9"}],
        ),
        400,
    )
    # A subnet from a pool and one not from it cannot share a network (same IP version).
    refused(
        post_subnet(demo, net_id, ip_version=4, cidr="192.168.50.0/24"),
        400,
        "NetworkSubnetPoolAffinityError",
    )
    refused(demo.delete(f"/subnetpools/{made['id']}"), 400, "SubnetPoolDeleteError")
    for carved in (first, second, third, specific):
        ok(demo.delete(f"/subnets/{carved['id']}"), 204)
    ok(demo.delete(f"/subnetpools/{made['id']}"), 204)
    refused(demo.get(f"/subnetpools/{made['id']}"), 404, "SubnetPoolNotFound")


def test_pool_quota_counts_address_space(demo: httpx.Client) -> None:
    made = pool(demo, prefixes=["10.44.0.0/16"], default_prefixlen=24, default_quota=512)
    subnet(demo, network(demo)["id"], subnetpool_id=made["id"])
    subnet(demo, network(demo)["id"], subnetpool_id=made["id"])
    message = refused(
        post_subnet(demo, network(demo)["id"], ip_version=4, subnetpool_id=made["id"]),
        409,
        "SubnetPoolQuotaExceeded",
    )
    assert "quota" in message


def test_one_default_pool_per_ip_version(admin_http: httpx.Client, demo: httpx.Client) -> None:
    refused(post_subnet(demo, network(demo)["id"], ip_version=6, use_default_subnetpool=True), 400)
    default = pool(admin_http, prefixes=["2001:db8:45::/48"], is_default=True, shared=True)
    refused(
        admin_http.post(
            "/subnetpools",
            json={
                "subnetpool": {"name": "d2", "prefixes": ["2001:db8:46::/48"], "is_default": True}
            },
        ),
        400,
        "InvalidInput",
    )
    other = pool(admin_http, prefixes=["2001:db8:47::/48"])
    refused(
        admin_http.put(f"/subnetpools/{other['id']}", json={"subnetpool": {"is_default": True}}),
        400,
    )
    made = subnet(demo, network(demo)["id"], ip_version=6, use_default_subnetpool=True)
    assert made["subnetpool_id"] == default["id"]
    assert made["cidr"] == "2001:db8:45::/64"
    assert made["gateway_ip"] == "2001:db8:45::1"
    refused(
        post_subnet(
            demo,
            network(demo)["id"],
            ip_version=6,
            use_default_subnetpool=True,
            subnetpool_id=default["id"],
        ),
        400,
    )
    ok(demo.delete(f"/subnets/{made['id']}"), 204)
    ok(admin_http.put(f"/subnetpools/{default['id']}", json={"subnetpool": {"is_default": False}}))


def test_pool_updates_and_prefix_operations(demo: httpx.Client) -> None:
    made = pool(demo, prefixes=["10.48.0.0/24"])
    url = f"/subnetpools/{made['id']}"
    refused(
        demo.put(url, json={"subnetpool": {"prefixes": ["10.48.0.0/25"]}}),
        400,
        "IllegalSubnetPoolPrefixUpdate",
    )
    grown = ok(
        demo.put(
            url, json={"subnetpool": {"prefixes": ["10.48.0.0/24", "10.48.1.0/24"], "name": "g"}}
        )
    )
    assert grown["subnetpool"]["prefixes"] == ["10.48.0.0/23"]
    assert grown["subnetpool"]["revision_number"] == made["revision_number"] + 1
    refused(demo.put(url, json={"subnetpool": {"shared": True}}), 400)
    refused(demo.put(url, json={"subnetpool": {"min_prefixlen": 30, "max_prefixlen": 29}}), 400)
    added = ok(demo.put(f"{url}/add_prefixes", json={"prefixes": ["10.48.4.0/24"]}))
    assert added == {"prefixes": ["10.48.0.0/23", "10.48.4.0/24"]}
    carved = subnet(demo, network(demo)["id"], subnetpool_id=made["id"], cidr="10.48.4.0/25")
    refused(
        demo.put(f"{url}/remove_prefixes", json={"prefixes": ["10.48.4.0/24"]}),
        400,
        "IllegalSubnetPoolPrefixUpdate",
    )
    ok(demo.delete(f"/subnets/{carved['id']}"), 204)
    removed = ok(
        demo.put(f"{url}/remove_prefixes", json={"prefixes": ["10.48.4.0/24", "10.48.1.0/24"]})
    )
    assert removed == {"prefixes": ["10.48.0.0/24"]}
    refused(demo.put(f"{url}/add_prefixes", json={"prefix": []}), 400)


def test_pools_of_others_are_hidden_unless_shared(
    admin_http: httpx.Client, demo: httpx.Client, alt: httpx.Client
) -> None:
    private = pool(demo, prefixes=["10.49.0.0/24"])
    refused(alt.get(f"/subnetpools/{private['id']}"), 404, "SubnetPoolNotFound")
    refused(alt.delete(f"/subnetpools/{private['id']}"), 404)
    refused(post_subnet(alt, network(alt)["id"], ip_version=4, subnetpool_id=private["id"]), 404)
    shared = pool(admin_http, prefixes=["10.50.0.0/16"], shared=True, default_prefixlen=24)
    assert ok(alt.get(f"/subnetpools/{shared['id']}"))["subnetpool"]["shared"] is True
    refused(alt.put(f"/subnetpools/{shared['id']}", json={"subnetpool": {"name": "x"}}), 403)
    made = subnet(alt, network(alt)["id"], subnetpool_id=shared["id"])
    assert made["cidr"] == "10.50.0.0/24"
    listed = {p["id"] for p in ok(alt.get("/subnetpools"))["subnetpools"]}
    assert shared["id"] in listed and private["id"] not in listed


def test_onboarding_a_networks_subnets(demo: httpx.Client) -> None:
    made = pool(demo, prefixes=["10.51.0.0/24"])
    net_id = network(demo)["id"]
    adopted = subnet(demo, net_id, cidr="10.52.0.0/24")
    result = ok(
        demo.put(f"/subnetpools/{made['id']}/onboard_network_subnets", json={"network_id": net_id})
    )
    assert result == [{"id": adopted["id"], "cidr": "10.52.0.0/24"}]
    assert ok(demo.get(f"/subnets/{adopted['id']}"))["subnet"]["subnetpool_id"] == made["id"]
    assert "10.52.0.0/24" in ok(demo.get(f"/subnetpools/{made['id']}"))["subnetpool"]["prefixes"]


# --- address scopes -------------------------------------------------------------------------


def test_address_scopes_and_network_scope(
    admin_http: httpx.Client, demo: httpx.Client, alt: httpx.Client
) -> None:
    made = scope(demo)
    assert set(made) == {"id", "name", "project_id", "tenant_id", "shared", "ip_version"}
    refused(alt.get(f"/address-scopes/{made['id']}"), 404, "AddressScopeNotFound")
    member = pool(
        demo, prefixes=["10.60.0.0/16"], address_scope_id=made["id"], default_prefixlen=24
    )
    refused(
        demo.post(
            "/subnetpools",
            json={
                "subnetpool": {
                    "name": "x",
                    "prefixes": ["10.60.4.0/24"],
                    "address_scope_id": made["id"],
                }
            },
        ),
        409,
        "AddressScopePrefixConflict",
    )
    v6_scope = scope(demo, ip_version=6)
    refused(
        demo.post(
            "/subnetpools",
            json={
                "subnetpool": {
                    "name": "x",
                    "prefixes": ["10.61.0.0/24"],
                    "address_scope_id": v6_scope["id"],
                }
            },
        ),
        400,
        "IllegalSubnetPoolIpVersionAssociationToAddressScope",
    )
    net_id = network(demo)["id"]
    subnet(demo, net_id, subnetpool_id=member["id"])
    shown = ok(demo.get(f"/networks/{net_id}"))["network"]
    assert shown["ipv4_address_scope"] == made["id"] and shown["ipv6_address_scope"] is None
    refused(demo.delete(f"/address-scopes/{made['id']}"), 409, "AddressScopeInUse")
    refused(
        demo.put(f"/address-scopes/{made['id']}", json={"address_scope": {"shared": True}}), 403
    )
    shared = scope(admin_http, shared=True)
    assert ok(alt.get(f"/address-scopes/{shared['id']}"))["address_scope"]["shared"] is True
    refused(
        admin_http.put(
            f"/address-scopes/{shared['id']}", json={"address_scope": {"shared": False}}
        ),
        400,
        "AddressScopeUpdateError",
    )
    renamed = ok(
        demo.put(f"/address-scopes/{v6_scope['id']}", json={"address_scope": {"name": "n"}})
    )
    assert renamed["address_scope"]["name"] == "n"
    ok(demo.delete(f"/address-scopes/{v6_scope['id']}"), 204)
    refused(
        demo.post("/address-scopes", json={"address_scope": {"name": "x", "ip_version": 5}}), 400
    )


# --- IP availability ------------------------------------------------------------------------


def test_ip_availability_counts_pools_and_holders(
    admin_http: httpx.Client, demo: httpx.Client
) -> None:
    net = network(demo, name="avail")
    v4 = subnet(
        demo,
        net["id"],
        cidr="10.70.0.0/24",
        allocation_pools=[{"start": "10.70.0.10", "end": "10.70.0.19"}],
    )
    v6 = subnet(demo, net["id"], cidr="2001:db8:70::/120", ip_version=6)
    for _ in range(3):
        ok(demo.post("/ports", json={"port": {"network_id": net["id"]}}), 201)
    body = ok(admin_http.get(f"/network-ip-availabilities/{net['id']}"))["network_ip_availability"]
    by_subnet = {s["subnet_id"]: s for s in body["subnet_ip_availability"]}
    assert by_subnet[v4["id"]]["total_ips"] == 10 and by_subnet[v4["id"]]["used_ips"] == 3
    assert by_subnet[v6["id"]]["total_ips"] == 255 and by_subnet[v6["id"]]["used_ips"] == 3
    assert (body["total_ips"], body["used_ips"]) == (265, 6)
    assert body["network_name"] == "avail" and body["project_id"] == net["project_id"]
    only_v6 = ok(
        admin_http.get(
            "/network-ip-availabilities", params={"ip_version": 6, "network_id": net["id"]}
        )
    )
    [entry] = only_v6["network_ip_availabilities"]
    assert [s["subnet_id"] for s in entry["subnet_ip_availability"]] == [v6["id"]]
    named = ok(admin_http.get("/network-ip-availabilities", params={"network_name": "avail"}))
    assert net["id"] in {n["network_id"] for n in named["network_ip_availabilities"]}
    # Not for ordinary projects.
    assert ok(demo.get("/network-ip-availabilities"))["network_ip_availabilities"] == []
    refused(demo.get(f"/network-ip-availabilities/{net['id']}"), 404)
    refused(admin_http.get(f"/network-ip-availabilities/{'0' * 32}"), 404, "NetworkNotFound")
    assert ipaddress.ip_network(v6["cidr"]).num_addresses == 256


def test_extensions_are_listed(demo: httpx.Client) -> None:
    aliases = {e["alias"] for e in ok(demo.get("/extensions"))["extensions"]}
    assert {
        "subnet_allocation",
        "address-scope",
        "default-subnetpools",
        "subnetpool-prefix-ops",
        "network-ip-availability",
        "subnet-service-types",
    } <= aliases
