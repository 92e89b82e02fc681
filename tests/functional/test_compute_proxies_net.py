"""The deprecated security group and floating IP proxies of the compute API
(``os-security-groups``, ``os-security-group-rules``, ``os-floating-ips``,
``os-floating-ip-pools``), a server's security groups, and the addFloatingIp /
removeFloatingIp actions: what is made here is the Networking service's, and what the
Networking service holds shows here as Nova shows it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests import cloudfixture
from tests.functional.serveractions import Compute, cloud, error

__all__ = ["cloud"]

MISSING = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def demo(cloud: cloudfixture.Cloud) -> Compute:
    return Compute(cloud, cloud.token("demo", project="demo"), "compute 2.1")


@pytest.fixture(scope="module")
def alt(cloud: cloudfixture.Cloud) -> Compute:
    return Compute(cloud, cloud.token("alt_demo", project="alt_demo"), "compute 2.1")


@pytest.fixture(scope="module")
def admin(cloud: cloudfixture.Cloud) -> Compute:
    return Compute(cloud, cloud.token(), "compute 2.1")


@pytest.fixture(scope="module")
def neutron(demo: Compute) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=demo.cloud.base_url + "/networking/v2.0",
        headers={"X-Auth-Token": demo.token},
        timeout=30,
    ) as client:
        yield client


def make_group(client: Compute, name: str, description: str = "d") -> dict[str, Any]:
    response = client.http.post(
        "/os-security-groups",
        json={"security_group": {"name": name, "description": description}},
    )
    assert response.status_code == 200, response.text
    group: dict[str, Any] = response.json()["security_group"]
    return group


def add_rule(client: Compute, **rule: Any) -> httpx.Response:
    return client.http.post("/os-security-group-rules", json={"security_group_rule": rule})


# --- security groups --------------------------------------------------------------------------


def test_a_group_made_here_is_the_networking_service_s(
    demo: Compute, neutron: httpx.Client
) -> None:
    group = make_group(demo, " spaced name ", "web servers")
    assert group["name"] == " spaced name " and group["description"] == "web servers"
    assert group["rules"] == []  # Neutron's egress rules are not Nova's to show
    there = neutron.get(f"/security-groups/{group['id']}").json()["security_group"]
    assert (there["name"], there["description"]) == (" spaced name ", "web servers")
    assert group["tenant_id"] == there["project_id"]
    listed = demo.http.get("/os-security-groups").json()["security_groups"]
    assert group in listed
    assert "default" in [g["name"] for g in listed]
    assert demo.http.get(f"/os-security-groups/{group['id']}").json()["security_group"] == group
    updated = demo.http.put(
        f"/os-security-groups/{group['id']}",
        json={"security_group": {"name": "renamed", "description": "new"}},
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["security_group"]["name"] == "renamed"
    assert neutron.get(f"/security-groups/{group['id']}").json()["security_group"]["name"] == (
        "renamed"
    )
    assert demo.http.delete(f"/os-security-groups/{group['id']}").status_code == 202
    assert neutron.get(f"/security-groups/{group['id']}").status_code == 404
    error(demo.http.get(f"/os-security-groups/{group['id']}"), 404)


def test_a_group_made_in_neutron_shows_its_ingress_rules(
    demo: Compute, neutron: httpx.Client
) -> None:
    made = neutron.post("/security-groups", json={"security_group": {"name": "from-neutron"}})
    group = made.json()["security_group"]
    for rule in (
        {"protocol": "tcp", "port_range_min": 80, "port_range_max": 80},
        {"protocol": "tcp"},
        {"protocol": "icmp", "remote_ip_prefix": "10.0.0.0/8"},
        {"direction": "egress", "protocol": "udp"},
    ):
        body = {"direction": "ingress", "security_group_id": group["id"], **rule}
        assert neutron.post("/security-group-rules", json={"security_group_rule": body}).is_success
    shown = demo.http.get(f"/os-security-groups/{group['id']}").json()["security_group"]
    ranges = sorted(
        (r["ip_protocol"], r["from_port"], r["to_port"], r["ip_range"]["cidr"])
        for r in shown["rules"]
    )
    assert ranges == [
        ("icmp", -1, -1, "10.0.0.0/8"),
        ("tcp", 1, 65535, "0.0.0.0/0"),
        ("tcp", 80, 80, "0.0.0.0/0"),
    ]
    assert all(r["parent_group_id"] == group["id"] and r["group"] == {} for r in shown["rules"])


def test_rules_are_made_and_removed_in_neutron(demo: Compute, neutron: httpx.Client) -> None:
    group = make_group(demo, "ruled")
    peer = make_group(demo, "peer")
    made = add_rule(demo, parent_group_id=group["id"], ip_protocol="tcp", from_port=22, to_port=22)
    assert made.status_code == 200, made.text
    rule = made.json()["security_group_rule"]
    assert rule["ip_range"] == {"cidr": "0.0.0.0/0"} and rule["group"] == {}
    assert (rule["ip_protocol"], rule["from_port"], rule["to_port"]) == ("tcp", 22, 22)
    there = neutron.get(f"/security-group-rules/{rule['id']}").json()["security_group_rule"]
    assert (there["direction"], there["port_range_min"], there["port_range_max"]) == (
        "ingress",
        22,
        22,
    )
    cidr = add_rule(
        demo,
        parent_group_id=group["id"],
        ip_protocol="udp",
        from_port=53,
        to_port=53,
        cidr="10.2.3.124/24",
    ).json()["security_group_rule"]
    assert cidr["ip_range"] == {"cidr": "10.2.3.124/24"}
    by_group = add_rule(
        demo,
        parent_group_id=group["id"],
        ip_protocol="tcp",
        from_port=1,
        to_port=9,
        group_id=peer["id"],
    ).json()["security_group_rule"]
    assert by_group["group"] == {"name": "peer", "tenant_id": group["tenant_id"]}
    assert by_group["ip_range"] == {}
    icmp = add_rule(demo, parent_group_id=group["id"], ip_protocol="icmp", from_port=-1, to_port=-1)
    there = neutron.get(f"/security-group-rules/{icmp.json()['security_group_rule']['id']}")
    assert there.json()["security_group_rule"]["port_range_min"] is None
    rules = demo.http.get(f"/os-security-groups/{group['id']}").json()["security_group"]["rules"]
    assert len(rules) == 4
    # The peer group going takes the rules naming it with it (Neutron's cascade).
    assert demo.http.delete(f"/os-security-groups/{peer['id']}").status_code == 202
    rules = demo.http.get(f"/os-security-groups/{group['id']}").json()["security_group"]["rules"]
    assert by_group["id"] not in [r["id"] for r in rules] and len(rules) == 3
    assert demo.http.delete(f"/os-security-group-rules/{rule['id']}").status_code == 202
    assert neutron.get(f"/security-group-rules/{rule['id']}").status_code == 404
    error(demo.http.delete(f"/os-security-group-rules/{rule['id']}"), 404)
    error(demo.http.delete("/os-security-group-rules/not-a-uuid"), 400)


def test_bad_rules_are_refused_as_nova_refuses_them(demo: Compute, neutron: httpx.Client) -> None:
    group = make_group(demo, "strict")
    ok = {"parent_group_id": group["id"], "ip_protocol": "tcp", "from_port": 22, "to_port": 22}
    assert add_rule(demo, **ok).status_code == 200
    assert "already exists" in error(add_rule(demo, **ok), 400)
    assert "Invalid IP protocol" in error(add_rule(demo, **{**ok, "ip_protocol": "999x"}), 400)
    assert "Invalid port range" in error(add_rule(demo, **{**ok, "from_port": 65536}), 400)
    assert "Invalid port range" in error(add_rule(demo, **{**ok, "to_port": 70000}), 400)
    assert "Former value" in error(add_rule(demo, **{**ok, "from_port": 23}), 400)
    assert "must be integers" in error(add_rule(demo, **{**ok, "from_port": "x"}), 400)
    assert "not a valid IP network" in error(add_rule(demo, **{**ok, "cidr": "300.1.1.1/8"}), 400)
    assert "Bad prefix" in error(add_rule(demo, **{**ok, "cidr": "10.1.1.1/0"}), 400)
    assert "Not enough parameters" in error(
        add_rule(demo, parent_group_id=group["id"], ip_protocol="tcp"), 400
    )
    error(add_rule(demo, **{**ok, "parent_group_id": "not-a-uuid"}), 400)
    error(add_rule(demo, **{**ok, "parent_group_id": MISSING}), 404)
    error(add_rule(demo, **{**ok, "from_port": 80, "to_port": 80, "group_id": MISSING}), 404)
    rules = neutron.get("/security-group-rules", params={"security_group_id": group["id"]})
    assert (
        len([r for r in rules.json()["security_group_rules"] if r["direction"] == "ingress"]) == 1
    )


def test_groups_errors_and_the_default_group(demo: Compute, alt: Compute) -> None:
    default = next(
        g
        for g in demo.http.get("/os-security-groups").json()["security_groups"]
        if g["name"] == "default"
    )
    assert "group" in default["rules"][0] and default["rules"][0]["group"]["name"] == "default"
    error(demo.http.delete(f"/os-security-groups/{default['id']}"), 400)
    error(demo.http.get(f"/os-security-groups/{MISSING}"), 404)
    assert "uuid" in error(demo.http.get("/os-security-groups/not-a-uuid"), 400)
    error(demo.http.delete(f"/os-security-groups/{MISSING}"), 404)
    error(demo.http.delete("/os-security-groups/"), 404)
    body = {"security_group": {"name": "x", "description": "y"}}
    error(demo.http.put(f"/os-security-groups/{MISSING}", json=body), 404)
    error(demo.http.post("/os-security-groups", json={"security_group": {"name": "x"}}), 400)
    long = {"security_group": {"name": "n" * 256, "description": "d"}}
    error(demo.http.post("/os-security-groups", json=long), 400)
    mine = make_group(demo, "not-for-alt")
    error(alt.http.get(f"/os-security-groups/{mine['id']}"), 404)
    assert mine["id"] not in [
        g["id"] for g in alt.http.get("/os-security-groups").json()["security_groups"]
    ]


def test_all_tenants_is_for_admins(demo: Compute, admin: Compute) -> None:
    mine = make_group(demo, "listed-for-admin")
    theirs = make_group(admin, "admins-own")
    everything = admin.http.get("/os-security-groups", params={"all_tenants": "true"})
    listed = [g["id"] for g in everything.json()["security_groups"]]
    assert mine["id"] in listed and theirs["id"] in listed
    assert mine["id"] not in [
        g["id"] for g in admin.http.get("/os-security-groups").json()["security_groups"]
    ]
    own = demo.http.get("/os-security-groups", params={"all_tenants": "true"})
    own_ids = [g["id"] for g in own.json()["security_groups"]]
    assert mine["id"] in own_ids and theirs["id"] not in own_ids
    names = [g["name"] for g in own.json()["security_groups"]]
    assert names == sorted(names)
    limited = demo.http.get("/os-security-groups", params={"limit": "1"})
    assert len(limited.json()["security_groups"]) == 1


def test_security_group_proxies_end_at_2_36(demo: Compute) -> None:
    later = demo.at("2.36")
    error(later.http.get("/os-security-groups"), 404)
    body = {"security_group": {"name": "late", "description": ""}}
    error(later.http.post("/os-security-groups", json=body), 404)
    error(later.http.post("/os-security-group-rules", json={"security_group_rule": {}}), 404)


def test_a_server_s_groups_and_groups_in_use(demo: Compute) -> None:
    group = make_group(demo, "for-server")
    server = demo.at("2.96").boot("grouped", security_groups=[{"name": "for-server"}])
    listed = demo.at("2.96").http.get(f"/servers/{server['id']}/os-security-groups")
    assert listed.status_code == 200, listed.text
    assert [g["id"] for g in listed.json()["security_groups"]] == [group["id"]]
    assert "in use" in error(demo.http.delete(f"/os-security-groups/{group['id']}"), 400)
    error(demo.http.get(f"/servers/{MISSING}/os-security-groups"), 404)
    assert demo.at("2.96").http.delete(f"/servers/{server['id']}").status_code == 204
    demo.wait_gone(server["id"])
    assert demo.http.delete(f"/os-security-groups/{group['id']}").status_code == 202


# --- floating IPs -----------------------------------------------------------------------------


def test_pools_are_the_external_networks(demo: Compute) -> None:
    response = demo.http.get("/os-floating-ip-pools")
    assert response.json() == {"floating_ip_pools": [{"name": "public"}]}
    error(demo.at("2.36").http.get("/os-floating-ip-pools"), 404)


def test_floating_ips_allocated_here_are_neutron_s(demo: Compute, neutron: httpx.Client) -> None:
    made = demo.http.post("/os-floating-ips", json={"pool": "public"})
    assert made.status_code == 200, made.text
    fip = made.json()["floating_ip"]
    assert fip["pool"] == "public" and fip["instance_id"] is None and fip["fixed_ip"] is None
    there = neutron.get(f"/floatingips/{fip['id']}").json()["floatingip"]
    assert there["floating_ip_address"] == fip["ip"]
    assert demo.http.get(f"/os-floating-ips/{fip['id']}").json()["floating_ip"] == fip
    assert fip in demo.http.get("/os-floating-ips").json()["floating_ips"]
    public = next(
        n["id"] for n in neutron.get("/networks", params={"name": "public"}).json()["networks"]
    )
    by_id = demo.http.post("/os-floating-ips", json={"pool": public}).json()["floating_ip"]
    default = demo.http.post("/os-floating-ips").json()["floating_ip"]
    assert by_id["pool"] == default["pool"] == "public"
    for one in (fip, by_id, default):
        assert demo.http.delete(f"/os-floating-ips/{one['id']}").status_code == 202
        assert neutron.get(f"/floatingips/{one['id']}").status_code == 404
    error(demo.http.get(f"/os-floating-ips/{fip['id']}"), 404)
    error(demo.http.delete(f"/os-floating-ips/{fip['id']}"), 404)
    assert "pool not found" in error(demo.http.post("/os-floating-ips", json={"pool": "nope"}), 404)


def test_a_floating_ip_made_in_neutron_shows_here(
    demo: Compute, alt: Compute, neutron: httpx.Client
) -> None:
    public = neutron.get("/networks", params={"name": "public"}).json()["networks"][0]["id"]
    made = neutron.post("/floatingips", json={"floatingip": {"floating_network_id": public}})
    fip = made.json()["floatingip"]
    shown = demo.http.get(f"/os-floating-ips/{fip['id']}").json()["floating_ip"]
    assert shown["ip"] == fip["floating_ip_address"]
    error(alt.http.get(f"/os-floating-ips/{fip['id']}"), 404)
    assert fip["id"] not in [
        f["id"] for f in alt.http.get("/os-floating-ips").json()["floating_ips"]
    ]
    error(demo.at("2.36").http.get("/os-floating-ips"), 404)


def test_associate_and_disassociate_a_floating_ip(demo: Compute, neutron: httpx.Client) -> None:
    server = demo.at("2.96").boot("floating")
    other = demo.at("2.96").boot("floating-other")
    fip = demo.http.post("/os-floating-ips", json={"pool": "public"}).json()["floating_ip"]
    spare = demo.http.post("/os-floating-ips", json={"pool": "public"}).json()["floating_ip"]
    added = demo.action(server["id"], {"addFloatingIp": {"address": fip["ip"]}})
    assert added.status_code == 202, added.text
    shown = demo.http.get(f"/os-floating-ips/{fip['id']}").json()["floating_ip"]
    assert shown["instance_id"] == server["id"] and shown["fixed_ip"]
    port = neutron.get(f"/floatingips/{fip['id']}").json()["floatingip"]["port_id"]
    assert neutron.get(f"/ports/{port}").json()["port"]["device_id"] == server["id"]
    # One fixed address, one floating IP: a second one is refused.
    second = demo.action(server["id"], {"addFloatingIp": {"address": spare["ip"]}})
    error(second, 400)
    moved = demo.action(other["id"], {"addFloatingIp": {"address": fip["ip"]}})
    assert moved.status_code == 202, moved.text
    assert (
        demo.http.get(f"/os-floating-ips/{fip['id']}").json()["floating_ip"]["instance_id"]
        == other["id"]
    )
    error(demo.action(server["id"], {"removeFloatingIp": {"address": fip["ip"]}}), 409)
    assert demo.action(other["id"], {"removeFloatingIp": {"address": fip["ip"]}}).status_code == 202
    assert neutron.get(f"/floatingips/{fip['id']}").json()["floatingip"]["port_id"] is None
    error(demo.action(server["id"], {"addFloatingIp": {"address": "0.0.0.0"}}), 404)
    error(demo.action(server["id"], {"removeFloatingIp": {"address": "0.0.0.0"}}), 404)
    error(demo.action(server["id"], {"addFloatingIp": {"address": ""}}), 400)
    error(demo.at("2.44").action(server["id"], {"addFloatingIp": {"address": fip["ip"]}}), 404)
