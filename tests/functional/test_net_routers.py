"""Routers through openstacksdk and plain HTTP: gateways on external networks, interfaces
by subnet and by port, extra routes, distributed routers, visibility and errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.functional.netclients import (
    admin_http,
    alt_http,
    demo_http,
    made,
    network,
    neutron_error,
    subnet,
)

# Module fixtures used by the tests below.
__all__ = ["admin_http", "alt_http", "demo_http"]


def router(http: httpx.Client, **attrs: Any) -> dict[str, Any]:
    return made(http.post("/routers", json={"router": {"name": "r", **attrs}}), "router")


def port(http: httpx.Client, network_id: str, **attrs: Any) -> dict[str, Any]:
    return made(http.post("/ports", json={"port": {"network_id": network_id, **attrs}}), "port")


def add_interface(http: httpx.Client, router_id: str, **info: str) -> httpx.Response:
    return http.put(f"/routers/{router_id}/add_router_interface", json=info)


def remove_interface(http: httpx.Client, router_id: str, **info: str) -> httpx.Response:
    return http.put(f"/routers/{router_id}/remove_router_interface", json=info)


def ports_of(http: httpx.Client, device_id: str) -> list[dict[str, Any]]:
    return list(http.get("/ports", params={"device_id": device_id}).json()["ports"])


@pytest.fixture(scope="module")
def public(admin_http: httpx.Client) -> dict[str, Any]:
    """An external network every project may use, with one IPv4 subnet."""
    net = network(admin_http, name="ext-routers", **{"router:external": True})
    net["subnet"] = subnet(admin_http, net["id"], "198.51.100.0/24", enable_dhcp=False)
    return net


def demo_subnet(demo_http: httpx.Client, **attrs: Any) -> dict[str, Any]:
    return subnet(demo_http, network(demo_http)["id"], **attrs)


def test_sdk_lifecycle(admin: Any, public: dict[str, Any]) -> None:
    made_router = admin.network.create_router(
        name="sdk-router", external_gateway_info={"network_id": public["id"]}
    )
    info = made_router.external_gateway_info
    assert info["network_id"] == public["id"] and info["enable_snat"] is True
    (fixed,) = info["external_fixed_ips"]
    assert fixed["subnet_id"] == public["subnet"]["id"]
    assert fixed["ip_address"].startswith("198.51.100.")
    assert made_router.status == "ACTIVE" and made_router.is_distributed is False
    revision = made_router.revision_number
    updated = admin.network.update_router(made_router, name="sdk-router-2", is_admin_state_up=False)
    assert updated.name == "sdk-router-2" and updated.is_admin_state_up is False
    assert updated.revision_number > revision
    assert [r.id for r in admin.network.routers(name="sdk-router-2")] == [made_router.id]
    admin.network.delete_router(made_router)
    assert admin.network.find_router("sdk-router-2") is None


def test_gateway_port_and_its_rules(
    admin_http: httpx.Client, demo_http: httpx.Client, public: dict[str, Any]
) -> None:
    r = router(demo_http, external_gateway_info={"network_id": public["id"]})
    (gw,) = [
        p for p in ports_of(admin_http, r["id"]) if p["device_owner"] == "network:router_gateway"
    ]
    assert gw["network_id"] == public["id"] and gw["project_id"] == ""
    ip = r["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
    assert gw["fixed_ips"][0]["ip_address"] == ip
    assert "distributed" not in r and "ha" not in r
    # Only admins choose SNAT or the gateway's address.
    refused = demo_http.put(
        f"/routers/{r['id']}",
        json={
            "router": {"external_gateway_info": {"network_id": public["id"], "enable_snat": False}}
        },
    )
    neutron_error(refused, 403, "PolicyNotAuthorized")
    no_snat = admin_http.put(
        f"/routers/{r['id']}",
        json={
            "router": {
                "external_gateway_info": {
                    "network_id": public["id"],
                    "enable_snat": False,
                    "external_fixed_ips": [{"ip_address": "198.51.100.77"}],
                }
            }
        },
    )
    info = made(no_snat, "router", 200)["external_gateway_info"]
    assert info["enable_snat"] is False
    assert info["external_fixed_ips"][0]["ip_address"] == "198.51.100.77"
    # Clearing the gateway frees its port.
    cleared = made(
        demo_http.put(f"/routers/{r['id']}", json={"router": {"external_gateway_info": {}}}),
        "router",
        200,
    )
    assert cleared["external_gateway_info"] is None
    assert ports_of(admin_http, r["id"]) == []


def test_gateway_network_must_be_external_and_visible(
    demo_http: httpx.Client, admin_http: httpx.Client
) -> None:
    r = router(demo_http)
    internal = network(demo_http)
    subnet(demo_http, internal["id"])
    refused = demo_http.put(
        f"/routers/{r['id']}",
        json={"router": {"external_gateway_info": {"network_id": internal["id"]}}},
    )
    assert "is not an external network" in neutron_error(refused, 400, "BadRequest")
    missing = demo_http.put(
        f"/routers/{r['id']}", json={"router": {"external_gateway_info": {"network_id": r["id"]}}}
    )
    neutron_error(missing, 404, "NetworkNotFound")
    # An external network granted to nobody else is invisible (404) to other projects.
    private_ext = network(admin_http, name="ext-private")
    admin_http.put(f"/networks/{private_ext['id']}", json={"network": {"router:external": True}})
    policies = admin_http.get(
        "/rbac-policies", params={"object_id": private_ext["id"], "action": "access_as_external"}
    ).json()["rbac_policies"]
    for policy in policies:
        admin_http.delete(f"/rbac-policies/{policy['id']}")
    hidden = demo_http.put(
        f"/routers/{r['id']}",
        json={"router": {"external_gateway_info": {"network_id": private_ext["id"]}}},
    )
    neutron_error(hidden, 404, "NetworkNotFound")
    bad = demo_http.put(
        f"/routers/{r['id']}",
        json={"router": {"external_gateway_info": {"network_id": private_ext["id"], "x": 1}}},
    )
    assert "Unexpected keys supplied: x" in neutron_error(bad, 400)


def test_interfaces_by_subnet(demo_http: httpx.Client, admin_http: httpx.Client) -> None:
    sub = demo_subnet(demo_http)
    r = router(demo_http)
    added = add_interface(demo_http, r["id"], subnet_id=sub["id"])
    assert added.status_code == 200, added.text
    info = added.json()
    assert info["id"] == r["id"] and info["subnet_id"] == sub["id"]
    assert info["subnet_ids"] == [sub["id"]] and info["network_id"] == sub["network_id"]
    shown = demo_http.get(f"/ports/{info['port_id']}").json()["port"]
    assert shown["device_id"] == r["id"]
    assert shown["device_owner"] == "network:router_interface"
    assert shown["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": sub["gateway_ip"]}]
    again = add_interface(demo_http, r["id"], subnet_id=sub["id"])
    assert "already has a port on subnet" in neutron_error(again, 400)
    overlapping = subnet(demo_http, network(demo_http)["id"], sub["cidr"])
    assert "overlaps with cidr" in neutron_error(
        add_interface(demo_http, r["id"], subnet_id=overlapping["id"]), 400
    )
    neutron_error(demo_http.delete(f"/routers/{r['id']}"), 409, "RouterInUse")
    neutron_error(demo_http.delete(f"/ports/{info['port_id']}"), 409)
    removed = remove_interface(demo_http, r["id"], subnet_id=sub["id"])
    assert removed.status_code == 200 and removed.json()["port_id"] == info["port_id"]
    assert demo_http.get(f"/ports/{info['port_id']}").status_code == 404
    neutron_error(
        remove_interface(demo_http, r["id"], subnet_id=sub["id"]),
        404,
        "RouterInterfaceNotFoundForSubnet",
    )
    assert demo_http.delete(f"/routers/{r['id']}").status_code == 204


def test_interfaces_by_port(demo_http: httpx.Client) -> None:
    sub = demo_subnet(demo_http)
    r = router(demo_http)
    p = port(demo_http, sub["network_id"])
    info = add_interface(demo_http, r["id"], port_id=p["id"]).json()
    assert info["port_id"] == p["id"] and info["subnet_id"] == sub["id"]
    assert demo_http.get(f"/ports/{p['id']}").json()["port"]["device_id"] == r["id"]
    other = router(demo_http)
    neutron_error(add_interface(demo_http, other["id"], port_id=p["id"]), 409, "PortInUse")
    neutron_error(
        remove_interface(demo_http, other["id"], port_id=p["id"]), 404, "RouterInterfaceNotFound"
    )
    both = add_interface(demo_http, other["id"], port_id=p["id"], subnet_id=sub["id"])
    assert "Cannot specify both" in neutron_error(both, 400)
    assert "Either subnet_id or port_id" in neutron_error(add_interface(demo_http, r["id"]), 400)
    mismatch = remove_interface(demo_http, r["id"], port_id=p["id"], subnet_id=other["id"])
    neutron_error(mismatch, 400, "SubnetMismatchForPort")
    assert remove_interface(demo_http, r["id"], port_id=p["id"]).status_code == 200
    assert demo_http.get(f"/ports/{p['id']}").status_code == 404


def test_extra_routes(demo_http: httpx.Client) -> None:
    sub = demo_subnet(demo_http, cidr="10.200.0.0/24")
    r = router(demo_http)
    add_interface(demo_http, r["id"], subnet_id=sub["id"])
    unreachable = demo_http.put(
        f"/routers/{r['id']}",
        json={"router": {"routes": [{"destination": "10.9.0.0/16", "nexthop": "10.99.0.5"}]}},
    )
    assert "not connected with router" in neutron_error(unreachable, 400, "InvalidRoutes")
    own = demo_http.put(
        f"/routers/{r['id']}",
        json={"router": {"routes": [{"destination": "10.9.0.0/16", "nexthop": "10.200.0.1"}]}},
    )
    assert "used by router" in neutron_error(own, 400, "InvalidRoutes")
    routes = [
        {"destination": "10.9.0.0/16", "nexthop": "10.200.0.5"},
        {"destination": "10.8.0.0/16", "nexthop": "10.200.0.6"},
    ]
    got = made(
        demo_http.put(f"/routers/{r['id']}", json={"router": {"routes": routes}}), "router", 200
    )
    assert sorted(got["routes"], key=str) == sorted(routes, key=str)
    blocked = remove_interface(demo_http, r["id"], subnet_id=sub["id"])
    neutron_error(blocked, 409, "RouterInterfaceInUseByRoute")
    more = demo_http.put(
        f"/routers/{r['id']}/add_extraroutes",
        json={
            "router": {
                "routes": [{"destination": "10.7.0.0/16", "nexthop": "10.200.0.7"}, routes[0]]
            }
        },
    )
    assert len(made(more, "router", 200)["routes"]) == 3
    fewer = demo_http.put(
        f"/routers/{r['id']}/remove_extraroutes",
        json={
            "router": {"routes": [*routes, {"destination": "10.1.0.0/16", "nexthop": "10.200.0.9"}]}
        },
    )
    assert made(fewer, "router", 200)["routes"] == [
        {"destination": "10.7.0.0/16", "nexthop": "10.200.0.7"}
    ]
    bad = demo_http.put(f"/routers/{r['id']}", json={"router": {"routes": [{"destination": "x"}]}})
    neutron_error(bad, 400)
    cleared = demo_http.put(f"/routers/{r['id']}", json={"router": {"routes": None}})
    assert made(cleared, "router", 200)["routes"] == []
    assert remove_interface(demo_http, r["id"], subnet_id=sub["id"]).status_code == 200


def test_distributed_routers(
    admin_http: httpx.Client, demo_http: httpx.Client, public: dict
) -> None:
    neutron_error(
        demo_http.post("/routers", json={"router": {"distributed": True}}),
        403,
        "PolicyNotAuthorized",
    )
    sub = demo_subnet(demo_http)
    r = router(
        admin_http,
        distributed=True,
        project_id=sub["project_id"],
        external_gateway_info={"network_id": public["id"]},
    )
    assert r["distributed"] is True and r["ha"] is False
    assert "distributed" not in demo_http.get(f"/routers/{r['id']}").json()["router"]
    info = add_interface(demo_http, r["id"], subnet_id=sub["id"]).json()
    owners = {p["device_owner"]: p for p in ports_of(admin_http, r["id"])}
    assert owners["network:router_interface_distributed"]["id"] == info["port_id"]
    snat = owners["network:router_centralized_snat"]
    assert snat["fixed_ips"][0]["subnet_id"] == sub["id"]
    assert snat["fixed_ips"][0]["ip_address"] != sub["gateway_ip"]
    # Changing the kind of router needs it down first.
    up = admin_http.put(f"/routers/{r['id']}", json={"router": {"distributed": False}})
    assert "admin_state_up to False" in neutron_error(up, 400)
    down = admin_http.put(
        f"/routers/{r['id']}", json={"router": {"distributed": False, "admin_state_up": False}}
    )
    assert down.status_code == 400
    admin_http.put(f"/routers/{r['id']}", json={"router": {"admin_state_up": False}})
    central = made(
        admin_http.put(f"/routers/{r['id']}", json={"router": {"distributed": False}}),
        "router",
        200,
    )
    assert central["distributed"] is False
    kinds = {p["device_owner"] for p in ports_of(admin_http, r["id"])}
    assert kinds == {"network:router_interface", "network:router_gateway"}


def test_other_projects_routers_are_404(demo_http: httpx.Client, alt_http: httpx.Client) -> None:
    r = router(demo_http)
    sub = demo_subnet(alt_http)
    neutron_error(alt_http.get(f"/routers/{r['id']}"), 404, "RouterNotFound")
    neutron_error(alt_http.put(f"/routers/{r['id']}", json={"router": {"name": "x"}}), 404)
    neutron_error(alt_http.delete(f"/routers/{r['id']}"), 404, "RouterNotFound")
    neutron_error(add_interface(alt_http, r["id"], subnet_id=sub["id"]), 404, "RouterNotFound")
    assert r["id"] not in {x["id"] for x in alt_http.get("/routers").json()["routers"]}
    # Nor may demo plug alt's subnet into its router.
    neutron_error(add_interface(demo_http, r["id"], subnet_id=sub["id"]), 404, "SubnetNotFound")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"router": {"name": 5}}, "Invalid input for name"),
        ({"router": {"routes": []}}, "not allowed in POST"),
        ({"router": {"status": "DOWN"}}, "not allowed in POST"),
        ({"router": {"external_gateway_info": {"enable_snat": True}}}, "Expected keys"),
        ({"router": {"external_gateway_info": {"network_id": "nope"}}}, "not a valid UUID"),
        ({"router": {"bogus": 1}}, "Unrecognized attribute(s) 'bogus'"),
    ],
)
def test_bad_input_changes_nothing(admin_http: httpx.Client, body: dict, words: str) -> None:
    before = {r["id"] for r in admin_http.get("/routers").json()["routers"]}
    assert words in neutron_error(admin_http.post("/routers", json=body), 400)
    assert {r["id"] for r in admin_http.get("/routers").json()["routers"]} == before


def test_router_quota(admin_http: httpx.Client, alt_http: httpx.Client) -> None:
    project = router(alt_http)["project_id"]
    quota = admin_http.put(f"/quotas/{project}", json={"quota": {"router": 2}})
    assert quota.status_code == 200, quota.text
    router(alt_http)
    neutron_error(alt_http.post("/routers", json={"router": {}}), 409, "OverQuota")
