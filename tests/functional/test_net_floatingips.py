"""Floating IPs and port forwardings through openstacksdk and plain HTTP: allocation on
external networks, association through a router, port details, visibility, the rules
that tie floating IPs to routers and ports, and floating IP pools."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import cloudfixture, postgres
from tests.functional.netclients import (
    admin_http,
    alt_http,
    client,
    demo_http,
    made,
    network,
    neutron_error,
    subnet,
)

# Module fixtures used by the tests below.
__all__ = ["admin_http", "alt_http", "demo_http"]


def port(http: httpx.Client, network_id: str, **attrs: Any) -> dict[str, Any]:
    return made(http.post("/ports", json={"port": {"network_id": network_id, **attrs}}), "port")


def fip(http: httpx.Client, network_id: str, **attrs: Any) -> httpx.Response:
    return http.post(
        "/floatingips", json={"floatingip": {"floating_network_id": network_id, **attrs}}
    )


def associate(http: httpx.Client, fip_id: str, **attrs: Any) -> httpx.Response:
    return http.put(f"/floatingips/{fip_id}", json={"floatingip": attrs})


@pytest.fixture(scope="module")
def public(admin_http: httpx.Client) -> dict[str, Any]:
    net = network(admin_http, name="ext-fips", **{"router:external": True})
    net["subnet"] = subnet(admin_http, net["id"], "203.0.113.0/24", enable_dhcp=False)
    return net


@pytest.fixture(scope="module")
def routed(demo_http: httpx.Client, public: dict[str, Any]) -> dict[str, Any]:
    """demo's network, its subnet, and a router joining it to the external network."""
    net = network(demo_http, name="routed")
    sub = subnet(demo_http, net["id"])
    router = made(
        demo_http.post(
            "/routers",
            json={
                "router": {"name": "fip-r", "external_gateway_info": {"network_id": public["id"]}}
            },
        ),
        "router",
    )
    assert (
        demo_http.put(
            f"/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]}
        ).status_code
        == 200
    )
    return {"network": net, "subnet": sub, "router": router}


def test_sdk_lifecycle(admin: Any, public: dict[str, Any]) -> None:
    made_fip = admin.network.create_ip(floating_network_id=public["id"], description="sdk")
    assert made_fip.floating_ip_address.startswith("203.0.113.")
    assert made_fip.port_id is None and made_fip.router_id is None
    assert made_fip.status == "DOWN" and made_fip.description == "sdk"
    found = admin.network.find_ip(made_fip.floating_ip_address)
    assert found is not None and found.id == made_fip.id
    admin.network.delete_ip(made_fip)
    assert admin.network.find_ip(made_fip.floating_ip_address) is None


def test_allocate_associate_disassociate(
    demo_http: httpx.Client, admin_http: httpx.Client, public: dict, routed: dict
) -> None:
    p = port(demo_http, routed["network"]["id"])
    created = made(fip(demo_http, public["id"], port_id=p["id"]), "floatingip")
    assert created["port_id"] == p["id"]
    assert created["fixed_ip_address"] == p["fixed_ips"][0]["ip_address"]
    assert created["router_id"] == routed["router"]["id"]
    details = created["port_details"]
    assert details["network_id"] == p["network_id"] and details["mac_address"] == p["mac_address"]
    assert set(details) == {
        "name",
        "network_id",
        "mac_address",
        "admin_state_up",
        "status",
        "device_id",
        "device_owner",
    }
    (own_port,) = admin_http.get(
        "/ports", params={"device_id": created["id"], "device_owner": "network:floatingip"}
    ).json()["ports"]
    assert own_port["fixed_ips"][0]["ip_address"] == created["floating_ip_address"]
    neutron_error(demo_http.delete(f"/ports/{own_port['id']}"), 404)
    neutron_error(admin_http.delete(f"/ports/{own_port['id']}"), 409, "ServicePortInUse")
    # The same fixed address cannot take a second floating IP of that network.
    second = fip(demo_http, public["id"], port_id=p["id"])
    neutron_error(second, 409, "FloatingIPPortAlreadyAssociated")
    freed = made(associate(demo_http, created["id"], port_id=None), "floatingip", 200)
    assert freed["port_id"] is None and freed["router_id"] is None
    assert freed["fixed_ip_address"] is None and freed["port_details"] is None
    assert freed["revision_number"] > created["revision_number"]
    assert demo_http.delete(f"/floatingips/{created['id']}").status_code == 204
    assert admin_http.get(f"/ports/{own_port['id']}").status_code == 404


def test_multiple_fixed_ips_need_a_choice(
    demo_http: httpx.Client, public: dict, routed: dict
) -> None:
    sub = routed["subnet"]
    p = port(demo_http, sub["network_id"], fixed_ips=[{"subnet_id": sub["id"]}] * 2)
    first, second = (f["ip_address"] for f in p["fixed_ips"])
    unclear = fip(demo_http, public["id"], port_id=p["id"])
    assert "multiple fixed IPv4 addresses" in neutron_error(unclear, 400)
    chosen = made(
        fip(demo_http, public["id"], port_id=p["id"], fixed_ip_address=first), "floatingip"
    )
    moved = associate(demo_http, chosen["id"], port_id=p["id"], fixed_ip_address=second)
    assert made(moved, "floatingip", 200)["fixed_ip_address"] == second
    wrong = associate(demo_http, chosen["id"], port_id=p["id"], fixed_ip_address="10.250.0.9")
    assert "does not have fixed ip" in neutron_error(wrong, 400)
    lone = associate(demo_http, chosen["id"], fixed_ip_address=first, port_id=None)
    assert "without a port_id" in neutron_error(lone, 400)


def test_unreachable_and_private_networks(
    demo_http: httpx.Client, public: dict, routed: dict
) -> None:
    # A subnet on a router without a gateway cannot reach the external network.
    net = network(demo_http)
    sub = subnet(demo_http, net["id"])
    router = made(demo_http.post("/routers", json={"router": {}}), "router")
    demo_http.put(f"/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]})
    p = port(demo_http, net["id"])
    unreachable = fip(demo_http, public["id"], port_id=p["id"])
    neutron_error(unreachable, 404, "ExternalGatewayForFloatingIPNotFound")
    free = made(fip(demo_http, public["id"]), "floatingip")
    neutron_error(
        associate(demo_http, free["id"], port_id=p["id"]),
        404,
        "ExternalGatewayForFloatingIPNotFound",
    )
    private = fip(demo_http, routed["network"]["id"])
    assert "not a valid external network" in neutron_error(private, 400)
    neutron_error(fip(demo_http, routed["router"]["id"]), 404, "NetworkNotFound")


def test_router_keeps_what_floating_ips_need(
    demo_http: httpx.Client, public: dict, routed: dict
) -> None:
    p = port(demo_http, routed["network"]["id"])
    used = made(fip(demo_http, public["id"], port_id=p["id"]), "floatingip")
    router_id = routed["router"]["id"]
    no_gateway = demo_http.put(
        f"/routers/{router_id}", json={"router": {"external_gateway_info": None}}
    )
    neutron_error(no_gateway, 409, "RouterExternalGatewayInUseByFloatingIp")
    no_interface = demo_http.put(
        f"/routers/{router_id}/remove_router_interface",
        json={"subnet_id": routed["subnet"]["id"]},
    )
    neutron_error(no_interface, 409, "RouterInterfaceInUseByFloatingIP")
    # Deleting the port lets the floating IP go free.
    assert demo_http.delete(f"/ports/{p['id']}").status_code == 204
    shown = made(demo_http.get(f"/floatingips/{used['id']}"), "floatingip", 200)
    assert shown["port_id"] is None and shown["router_id"] is None


def test_visibility_and_admin_choices(
    demo_http: httpx.Client, alt_http: httpx.Client, admin_http: httpx.Client, public: dict
) -> None:
    mine = made(fip(demo_http, public["id"]), "floatingip")
    neutron_error(alt_http.get(f"/floatingips/{mine['id']}"), 404, "FloatingIPNotFound")
    neutron_error(alt_http.delete(f"/floatingips/{mine['id']}"), 404, "FloatingIPNotFound")
    assert mine["id"] not in {f["id"] for f in alt_http.get("/floatingips").json()["floatingips"]}
    assert mine["id"] in {f["id"] for f in admin_http.get("/floatingips").json()["floatingips"]}
    chosen = fip(demo_http, public["id"], floating_ip_address="203.0.113.200")
    neutron_error(chosen, 403, "PolicyNotAuthorized")
    pinned = made(
        fip(
            admin_http,
            public["id"],
            floating_ip_address="203.0.113.200",
            project_id=mine["project_id"],
        ),
        "floatingip",
    )
    assert pinned["floating_ip_address"] == "203.0.113.200"
    assert pinned["project_id"] == mine["project_id"]
    listed = demo_http.get("/floatingips", params={"floating_ip_address": "203.0.113.200"})
    assert [f["id"] for f in listed.json()["floatingips"]] == [pinned["id"]]
    taken = fip(admin_http, public["id"], floating_ip_address="203.0.113.200")
    assert taken.status_code == 409, taken.text
    by_subnet = fip(demo_http, public["id"], subnet_id=public["subnet"]["id"])
    assert made(by_subnet, "floatingip")["floating_ip_address"].startswith("203.0.113.")
    neutron_error(demo_http.post("/floatingips", json={"floatingip": {}}), 400)


def test_port_forwardings(demo_http: httpx.Client, public: dict, routed: dict) -> None:
    p = port(demo_http, routed["network"]["id"])
    inside = p["fixed_ips"][0]["ip_address"]
    free = made(fip(demo_http, public["id"]), "floatingip")
    base = f"/floatingips/{free['id']}/port_forwardings"
    rule = {
        "protocol": "tcp",
        "internal_port_id": p["id"],
        "internal_ip_address": inside,
        "internal_port": 22,
        "external_port": 2222,
        "description": "ssh",
    }
    pf = made(demo_http.post(base, json={"port_forwarding": rule}), "port_forwarding")
    assert {k: pf[k] for k in rule} == rule
    shown = made(demo_http.get(f"/floatingips/{free['id']}"), "floatingip", 200)
    assert shown["router_id"] == routed["router"]["id"] and shown["port_id"] is None
    assert shown["port_forwardings"][0]["id"] == pf["id"]
    clash = demo_http.post(base, json={"port_forwarding": {**rule, "internal_port": 23}})
    assert "port collision" in neutron_error(clash, 400)
    udp = {**rule, "protocol": "udp"}
    assert demo_http.post(base, json={"port_forwarding": udp}).status_code == 201
    # A floating IP with port forwardings follows no port, and the other way round.
    neutron_error(
        associate(demo_http, free["id"], port_id=p["id"]), 409, "FipInUseByPortForwarding"
    )
    neutron_error(demo_http.delete(f"/floatingips/{free['id']}"), 409, "FipInUseByPortForwarding")
    other = port(demo_http, routed["network"]["id"])
    bound = made(fip(demo_http, public["id"], port_id=other["id"]), "floatingip")
    refused = demo_http.post(
        f"/floatingips/{bound['id']}/port_forwardings",
        json={"port_forwarding": {**rule, "internal_port": 8080}},
    )
    neutron_error(refused, 409, "FloatingIPPortAlreadyAssociated")
    to_bound_port = demo_http.post(
        base,
        json={
            "port_forwarding": {
                **rule,
                "external_port": 80,
                "internal_port_id": other["id"],
                "internal_ip_address": other["fixed_ips"][0]["ip_address"],
            }
        },
    )
    neutron_error(to_bound_port, 409, "PortHasBindingFloatingIP")
    changed = demo_http.put(f"{base}/{pf['id']}", json={"port_forwarding": {"external_port": 2022}})
    assert made(changed, "port_forwarding", 200)["external_port"] == 2022
    listed = demo_http.get(base, params={"protocol": "tcp"}).json()["port_forwardings"]
    assert [x["id"] for x in listed] == [pf["id"]]
    bad = demo_http.post(base, json={"port_forwarding": {**rule, "external_port": 70000}})
    neutron_error(bad, 400)
    for item in demo_http.get(base).json()["port_forwardings"]:
        assert demo_http.delete(f"{base}/{item['id']}").status_code == 204
    neutron_error(demo_http.get(f"{base}/{pf['id']}"), 404, "PortForwardingNotFound")
    emptied = made(demo_http.get(f"/floatingips/{free['id']}"), "floatingip", 200)
    assert emptied["router_id"] is None and emptied["port_forwardings"] == []


def test_floatingip_pools(demo_http: httpx.Client, public: dict) -> None:
    pools = demo_http.get("/floatingip_pools").json()["floatingip_pools"]
    mine = [p for p in pools if p["network_id"] == public["id"]]
    assert mine == [
        {
            "subnet_id": public["subnet"]["id"],
            "subnet_name": public["subnet"]["name"],
            "network_id": public["id"],
            "cidr": "203.0.113.0/24",
            "project_id": public["project_id"],
        }
    ]


def test_floating_ip_quota(admin_http: httpx.Client, alt_http: httpx.Client, public: dict) -> None:
    project = made(fip(alt_http, public["id"]), "floatingip")["project_id"]
    quota = admin_http.put(f"/quotas/{project}", json={"quota": {"floatingip": 1}})
    assert quota.status_code == 200, quota.text
    neutron_error(fip(alt_http, public["id"]), 409, "OverQuota")


def test_dns_name_and_domain(demo_http: httpx.Client, public: dict) -> None:
    named = made(
        fip(demo_http, public["id"], dns_name="Web", dns_domain="example.org."), "floatingip"
    )
    assert (named["dns_name"], named["dns_domain"]) == ("web", "example.org.")
    # Without a domain there is nowhere to publish the name: neither is kept.
    alone = made(fip(demo_http, public["id"], dns_name="web"), "floatingip")
    assert (alone["dns_name"], alone["dns_domain"]) == ("", "")
    assert "is not a FQDN" in neutron_error(
        fip(demo_http, public["id"], dns_name="a", dns_domain="example.org"), 400
    )
    assert "should be a relative domain name" in neutron_error(
        fip(demo_http, public["id"], dns_name="a.example.org.", dns_domain="example.org."), 400
    )
    fixed = associate(demo_http, named["id"], dns_name="other")
    assert "not allowed in PUT" in neutron_error(fixed, 400)


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


def test_one_floating_ip_per_fixed_address_under_concurrency(
    backend_cloud: cloudfixture.Cloud,
) -> None:
    with client(backend_cloud, backend_cloud.token()) as http:
        ext = network(http, name="ext", **{"router:external": True})
        subnet(http, ext["id"], "192.0.2.0/24", enable_dhcp=False)
        inner = network(http, name="inner")
        sub = subnet(http, inner["id"], "10.30.0.0/24")
        router = made(
            http.post(
                "/routers",
                json={"router": {"external_gateway_info": {"network_id": ext["id"]}}},
            ),
            "router",
        )
        http.put(f"/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]})
        target = port(http, inner["id"])
        fips = [made(fip(http, ext["id"]), "floatingip")["id"] for _ in range(12)]

        def claim(fip_id: str) -> int:
            return associate(http, fip_id, port_id=target["id"]).status_code

        with ThreadPoolExecutor(12) as pool:
            statuses = list(pool.map(claim, fips))
        assert sorted(statuses) == [200] + [409] * 11, statuses
        bound = http.get("/floatingips", params={"port_id": target["id"]}).json()["floatingips"]
        assert len(bound) == 1

        # Gateways set at once on one router leave one gateway port.
        bare = made(http.post("/routers", json={"router": {}}), "router")

        def gateway(_: int) -> int:
            body = {"router": {"external_gateway_info": {"network_id": ext["id"]}}}
            return http.put(f"/routers/{bare['id']}", json=body).status_code

        with ThreadPoolExecutor(6) as pool:
            assert set(pool.map(gateway, range(6))) == {200}
        gateways = http.get(
            "/ports", params={"device_id": bare["id"], "device_owner": "network:router_gateway"}
        ).json()["ports"]
        assert len(gateways) == 1
