"""Security groups and rules through the networking API (Neutron v2.0), as clients see them."""

from __future__ import annotations

import concurrent.futures
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests import cloudfixture

SG = "/security-groups"
RULES = "/security-group-rules"


def net_client(cloud: cloudfixture.Cloud, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=cloud.base_url + "/networking/v2.0", headers={"X-Auth-Token": token}, timeout=30
    )


@pytest.fixture(scope="module")
def demo(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with net_client(cloud, cloud.token("demo", project="demo")) as client:
        project = client.get("/quotas/project").json()["project"]["project_id"]
        # Room for the many groups these tests make (the quota tests use a fresh project).
        roomy = {"security_group": 100, "security_group_rule": 1000}
        with net_client(cloud, cloud.token()) as boss:
            assert boss.put(f"/quotas/{project}", json={"quota": roomy}).status_code == 200
        yield client


@pytest.fixture(scope="module")
def alt(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with net_client(cloud, cloud.token("alt_demo", project="alt_demo")) as client:
        yield client


@pytest.fixture
def fresh(cloud: cloudfixture.Cloud, admin: Any) -> Iterator[httpx.Client]:
    """A member of a project nobody has used yet (so it has no default group yet)."""
    member = cloudfixture.ProjectMember(cloud, admin)
    with net_client(cloud, member.token()) as client:
        yield client


def error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["NeutronError"]["type"]


def make_group(client: httpx.Client, **extra: Any) -> dict[str, Any]:
    body = {"name": f"sg-{uuid.uuid4().hex[:8]}", **extra}
    response = client.post(SG, json={"security_group": body})
    assert response.status_code == 201, response.text
    group: dict[str, Any] = response.json()["security_group"]
    return group


def add_rule(client: httpx.Client, group_id: str, **rule: Any) -> httpx.Response:
    body = {"security_group_id": group_id, "direction": "ingress", **rule}
    return client.post(RULES, json={"security_group_rule": body})


def defaults_of(client: httpx.Client) -> list[dict[str, Any]]:
    groups = client.get(SG).json()["security_groups"]
    return [g for g in groups if g["name"] == "default"]


def test_default_group_made_on_first_list_with_neutrons_rules(fresh: httpx.Client) -> None:
    (group,) = defaults_of(fresh)
    assert group["description"] == "Default security group"
    assert group["stateful"] is True
    shapes = sorted(
        (r["direction"], r["ethertype"], r["remote_group_id"] == group["id"], r["protocol"])
        for r in group["security_group_rules"]
    )
    assert shapes == [
        ("egress", "IPv4", False, None),
        ("egress", "IPv6", False, None),
        ("ingress", "IPv4", True, None),
        ("ingress", "IPv6", True, None),
    ]
    assert all(r["belongs_to_default_sg"] for r in group["security_group_rules"])
    assert [g["id"] for g in defaults_of(fresh)] == [group["id"]]


def test_concurrent_first_uses_make_one_default(fresh: httpx.Client) -> None:
    def first_use(i: int) -> int:
        path = SG if i % 2 else RULES
        return fresh.get(path).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert set(pool.map(first_use, range(16))) == {200}
    assert len(defaults_of(fresh)) == 1


def test_rule_listing_also_makes_the_default_group(fresh: httpx.Client) -> None:
    rules = fresh.get(RULES).json()["security_group_rules"]
    assert len(rules) == 4
    assert {r["belongs_to_default_sg"] for r in rules} == {True}


def test_default_group_cannot_be_deleted_renamed_or_duplicated(demo: httpx.Client) -> None:
    (group,) = defaults_of(demo)
    assert error(demo.delete(f"{SG}/{group['id']}")) == (409, "SecurityGroupCannotRemoveDefault")
    renamed = demo.put(f"{SG}/{group['id']}", json={"security_group": {"name": "other"}})
    assert error(renamed) == (409, "SecurityGroupCannotUpdateDefault")
    made = demo.post(SG, json={"security_group": {"name": "Default"}})
    assert error(made) == (409, "SecurityGroupDefaultAlreadyExists")
    described = demo.put(f"{SG}/{group['id']}", json={"security_group": {"description": "d"}})
    assert described.status_code == 200
    assert described.json()["security_group"]["description"] == "d"


def test_new_group_gets_egress_rules_and_updates_bump_revision(demo: httpx.Client) -> None:
    group = make_group(demo, description="web tier", stateful=False)
    assert group["stateful"] is False and group["shared"] is False
    assert sorted((r["direction"], r["ethertype"]) for r in group["security_group_rules"]) == [
        ("egress", "IPv4"),
        ("egress", "IPv6"),
    ]
    assert not any(r["belongs_to_default_sg"] for r in group["security_group_rules"])
    changed = demo.put(
        f"{SG}/{group['id']}", json={"security_group": {"name": "renamed", "stateful": True}}
    ).json()["security_group"]
    assert (changed["name"], changed["stateful"]) == ("renamed", True)
    assert changed["revision_number"] > group["revision_number"]
    to_default = demo.put(f"{SG}/{group['id']}", json={"security_group": {"name": "default"}})
    assert error(to_default) == (409, "SecurityGroupDefaultAlreadyExists")
    assert demo.get(f"{SG}/{group['id']}").json()["security_group"]["name"] == "renamed"
    assert demo.delete(f"{SG}/{group['id']}").status_code == 204
    assert error(demo.get(f"{SG}/{group['id']}")) == (404, "SecurityGroupNotFound")
    rules = demo.get(RULES, params={"security_group_id": group["id"]}).json()
    assert rules["security_group_rules"] == []


def test_protocols_by_name_and_number(demo: httpx.Client) -> None:
    group = make_group(demo)
    by_number = add_rule(demo, group["id"], protocol=17)
    assert by_number.status_code == 201
    assert by_number.json()["security_group_rule"]["protocol"] == "17"
    same_by_name = add_rule(demo, group["id"], protocol="UDP")
    assert error(same_by_name) == (409, "SecurityGroupRuleExists")
    assert by_number.json()["security_group_rule"]["id"] in same_by_name.text
    legacy = add_rule(demo, group["id"], protocol="icmpv6", ethertype="ipv6")
    rule = legacy.json()["security_group_rule"]
    assert (rule["protocol"], rule["ethertype"]) == ("ipv6-icmp", "IPv6")
    anything = add_rule(demo, group["id"], protocol="any", ethertype="IPv6", direction="egress")
    assert error(anything) == (409, "SecurityGroupRuleExists")  # the default egress rule
    assert error(add_rule(demo, group["id"], protocol="bogus")) == (
        400,
        "SecurityGroupRuleInvalidProtocol",
    )
    assert error(add_rule(demo, group["id"], protocol=256))[0] == 400
    v6_only = add_rule(demo, group["id"], protocol="ipv6-icmp", ethertype="IPv4")
    assert error(v6_only) == (400, "SecurityGroupEthertypeConflictWithProtocol")


def ports(protocol: str | None, low: int | None, high: int | None) -> dict[str, Any]:
    return {"protocol": protocol, "port_range_min": low, "port_range_max": high}


BAD_RULES = [
    (ports("tcp", -16, 80), "SecurityGroupInvalidPortValue", "Invalid value for port -16"),
    (ports("tcp", 80, 79), "SecurityGroupInvalidPortRange", "min must be <= port_range_max"),
    (ports("tcp", 80, 65536), "SecurityGroupInvalidPortValue", "Invalid value for port 65536"),
    (ports("tcp", None, 6), "SecurityGroupInvalidPortRange", "min must be <= port_range_max"),
    (ports("tcp", 0, 5), "SecurityGroupInvalidPortValue", "Invalid value for port 0"),
    (ports("icmp", 1, 256), "SecurityGroupInvalidIcmpValue", "Invalid value for ICMP code"),
    (ports("icmp", 300, 1), "SecurityGroupInvalidIcmpValue", "Invalid value for ICMP type"),
    (ports("icmp", None, 6), "SecurityGroupMissingIcmpType", "(port-range-min) is missing"),
    (ports("gre", 1, 2), "SecurityGroupInvalidProtocolForPort", "for protocol 47"),
    (ports(None, 22, 22), "SecurityGroupProtocolRequiredWithPorts", "Must also specify protocol"),
    ({"ethertype": "IPv5"}, "SecurityGroupRuleInvalidEtherType", "'IPv5' not supported"),
    ({"remote_ip_prefix": "192.168.1./24"}, "InvalidCIDR", "Invalid CIDR 192.168.1./24"),
    ({"remote_ip_prefix": "10.0.0.0/33"}, "InvalidCIDR", "Invalid CIDR"),
    ({"remote_ip_prefix": "2001:db8::/64"}, "SecurityGroupRuleParameterConflict", "IPv4 for"),
    ({"direction": "sideways"}, "InvalidInput", "direction"),
    ({"remote_address_group_id": str(uuid.uuid4())}, "BadRequest", "Unrecognized attribute"),
]


@pytest.mark.parametrize(("rule", "kind", "text"), BAD_RULES)
def test_rule_validation(demo: httpx.Client, rule: dict[str, Any], kind: str, text: str) -> None:
    group = make_group(demo)
    before = demo.get(RULES, params={"security_group_id": group["id"]}).json()
    response = add_rule(demo, group["id"], **rule)
    assert error(response) == (400, kind)
    assert text in response.json()["NeutronError"]["message"]
    after = demo.get(RULES, params={"security_group_id": group["id"]}).json()
    assert after == before


def test_icmp_type_and_code_and_port_ranges(demo: httpx.Client) -> None:
    group = make_group(demo)
    for low, high in ((3, 2), (3, 0), (8, 0), (0, 0), (11, None)):
        made = add_rule(demo, group["id"], protocol="icmp", port_range_min=low, port_range_max=high)
        rule = made.json()["security_group_rule"]
        assert (rule["port_range_min"], rule["port_range_max"]) == (low, high)
    whole = add_rule(demo, group["id"], protocol="tcp", port_range_min=1, port_range_max=65535)
    rule = whole.json()["security_group_rule"]
    assert (rule["port_range_min"], rule["port_range_max"]) == (None, None)
    again = add_rule(demo, group["id"], protocol="tcp")
    assert error(again) == (409, "SecurityGroupRuleExists")


def test_remote_prefix_is_normalized_and_excludes_remote_group(demo: httpx.Client) -> None:
    group = make_group(demo)
    other = make_group(demo)
    host = add_rule(demo, group["id"], protocol="tcp", remote_ip_prefix="10.0.0.7")
    rule = host.json()["security_group_rule"]
    assert (rule["remote_ip_prefix"], rule["normalized_cidr"]) == ("10.0.0.7/32", "10.0.0.7/32")
    loose = add_rule(demo, group["id"], protocol="udp", remote_ip_prefix="10.1.2.3/16")
    rule = loose.json()["security_group_rule"]
    assert (rule["remote_ip_prefix"], rule["normalized_cidr"]) == ("10.1.2.3/16", "10.1.0.0/16")
    both = add_rule(
        demo,
        group["id"],
        protocol="sctp",
        remote_ip_prefix="10.0.0.0/8",
        remote_group_id=other["id"],
    )
    assert error(both) == (400, "SecurityGroupMultipleRemoteEntites")
    anywhere = add_rule(demo, group["id"], direction="egress", remote_ip_prefix="0.0.0.0/0")
    assert error(anywhere) == (409, "SecurityGroupRuleExists")  # same as the default egress
    assert error(add_rule(demo, group["id"], remote_group_id="bad_group_id")) == (
        404,
        "SecurityGroupNotFound",
    )
    grouped = add_rule(demo, group["id"], protocol="udp", remote_group_id=other["id"])
    assert grouped.status_code == 201
    # Deleting the remote group takes the rules that name it along.
    assert demo.delete(f"{SG}/{other['id']}").status_code == 204
    shown = demo.get(f"{RULES}/{grouped.json()['security_group_rule']['id']}")
    assert error(shown) == (404, "SecurityGroupRuleNotFound")


def test_bulk_rules_are_all_or_nothing(demo: httpx.Client) -> None:
    group = make_group(demo)

    def bulk(*rules: dict[str, Any]) -> httpx.Response:
        items = [
            {"security_group_rule": {"security_group_id": group["id"], "direction": "ingress", **r}}
            for r in rules
        ]
        return demo.post(RULES, json={"security_group_rules": items})

    made = bulk(
        {"protocol": "tcp", "port_range_min": 22, "port_range_max": 22}, {"protocol": "icmp"}
    )
    assert made.status_code == 201
    assert [r["protocol"] for r in made.json()["security_group_rules"]] == ["tcp", "icmp"]
    count = len(
        demo.get(RULES, params={"security_group_id": group["id"]}).json()["security_group_rules"]
    )
    assert error(bulk({"protocol": "udp"}, {"protocol": "nope"}))[0] == 400
    assert error(bulk({"protocol": "udp"}, {"protocol": "17"})) == (
        409,
        "DuplicateSecurityGroupRuleInPost",
    )
    assert error(bulk({"protocol": "udp"}, {"protocol": "icmp"})) == (
        409,
        "SecurityGroupRuleExists",
    )
    rules = demo.get(RULES, params={"security_group_id": group["id"]}).json()[
        "security_group_rules"
    ]
    assert len(rules) == count


def test_rule_changes_bump_the_group_revision(demo: httpx.Client) -> None:
    group = make_group(demo)
    rule = add_rule(demo, group["id"], protocol="tcp").json()["security_group_rule"]
    after_add = demo.get(f"{SG}/{group['id']}").json()["security_group"]
    assert after_add["revision_number"] > group["revision_number"]
    assert rule["id"] in [r["id"] for r in after_add["security_group_rules"]]
    assert demo.delete(f"{RULES}/{rule['id']}").status_code == 204
    after_delete = demo.get(f"{SG}/{group['id']}").json()["security_group"]
    assert after_delete["revision_number"] > after_add["revision_number"]
    assert error(demo.delete(f"{RULES}/{rule['id']}")) == (404, "SecurityGroupRuleNotFound")


def test_other_projects_groups_and_rules_are_not_found(
    demo: httpx.Client, alt: httpx.Client
) -> None:
    group = make_group(demo)
    rule = add_rule(demo, group["id"], protocol="tcp").json()["security_group_rule"]
    assert error(alt.get(f"{SG}/{group['id']}")) == (404, "SecurityGroupNotFound")
    assert error(alt.put(f"{SG}/{group['id']}", json={"security_group": {"name": "x"}}))[0] == 404
    assert error(alt.delete(f"{SG}/{group['id']}"))[0] == 404
    assert error(add_rule(alt, group["id"], protocol="udp")) == (404, "SecurityGroupNotFound")
    assert error(alt.get(f"{RULES}/{rule['id']}")) == (404, "SecurityGroupRuleNotFound")
    assert error(alt.delete(f"{RULES}/{rule['id']}")) == (404, "SecurityGroupRuleNotFound")
    assert group["id"] not in [g["id"] for g in alt.get(SG).json()["security_groups"]]
    assert rule["id"] not in [r["id"] for r in alt.get(RULES).json()["security_group_rules"]]
    own = make_group(alt)
    remote = add_rule(alt, own["id"], protocol="tcp", remote_group_id=group["id"])
    assert error(remote) == (404, "SecurityGroupNotFound")


def test_listing_filters_fields_sorting_and_paging(demo: httpx.Client) -> None:
    names = [f"page-{uuid.uuid4().hex[:6]}-{i}" for i in range(3)]
    for name in names:
        demo.post(SG, json={"security_group": {"name": name, "description": "paged"}})
    found = demo.get(
        SG,
        params={"description": "paged", "sort_key": "name", "sort_dir": "desc", "fields": "name"},
    ).json()["security_groups"]
    assert [g["name"] for g in found] == sorted(names, reverse=True)
    assert all(set(g) == {"name"} for g in found)
    page = demo.get(SG, params={"description": "paged", "limit": 1}).json()
    assert len(page["security_groups"]) == 1 and page["security_groups_links"][0]["rel"] == "next"
    assert error(demo.get(SG, params={"flavor": "x"})) == (400, "HTTPBadRequest")


def test_admin_sees_and_creates_for_other_projects(admin: Any, demo: httpx.Client) -> None:
    demo_project = admin.identity.find_project("demo")
    made = admin.network.create_security_group(name="by-admin", project_id=demo_project.id)
    assert made.project_id == demo_project.id
    assert made.id in [g["id"] for g in demo.get(SG).json()["security_groups"]]
    rule = admin.network.create_security_group_rule(
        security_group_id=made.id,
        direction="ingress",
        protocol="tcp",
        port_range_min=443,
        port_range_max=443,
    )
    assert rule.project_id == demo_project.id
    listed = list(admin.network.security_groups(project_id=demo_project.id))
    assert {"by-admin", "default"} <= {g.name for g in listed}
    admin.network.delete_security_group(made.id)


def test_quotas_limit_groups_and_rules(
    cloud: cloudfixture.Cloud, admin: Any, fresh: httpx.Client
) -> None:
    project = fresh.get("/quotas/project").json()["project"]["project_id"]
    with net_client(cloud, cloud.token()) as boss:
        limits = {"security_group": 2, "security_group_rule": 7}
        assert boss.put(f"/quotas/{project}", json={"quota": limits}).status_code == 200
    # The default group (4 rules) is made on this first use and counts.
    first = make_group(fresh)  # 2 egress rules: 6 of 7 used
    assert add_rule(fresh, first["id"], protocol="tcp").status_code == 201
    used = fresh.get(f"/quotas/{project}/details").json()["quota"]
    assert used["security_group"] == {"limit": 2, "used": 2, "reserved": 0}
    assert used["security_group_rule"]["used"] == 7
    assert error(fresh.post(SG, json={"security_group": {"name": "third"}})) == (409, "OverQuota")
    assert error(add_rule(fresh, first["id"], protocol="udp")) == (409, "OverQuota")


def test_group_in_use_by_a_port_cannot_be_deleted(admin: Any) -> None:
    network = admin.network.create_network(name=f"sgnet-{uuid.uuid4().hex[:6]}")
    group = admin.network.create_security_group(name="in-use", stateful=True)
    port = admin.network.create_port(network_id=network.id, security_group_ids=[group.id])
    try:
        assert port.security_group_ids == [group.id]
        with pytest.raises(Exception) as raised:
            admin.network.delete_security_group(group.id)
        assert getattr(raised.value, "status_code", None) == 409
        with pytest.raises(Exception) as raised:
            admin.network.update_security_group(group.id, stateful=False)
        assert getattr(raised.value, "status_code", None) == 409
    finally:
        admin.network.delete_port(port.id)
        admin.network.delete_network(network.id)
    admin.network.delete_security_group(group.id)
    assert admin.network.find_security_group(group.id) is None
