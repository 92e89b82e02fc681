"""Server groups: policies per microversion, rules, quotas, visibility, paging."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import cloudfixture
from tests.functional import computehosts


@pytest.fixture(scope="module")
def admin_http(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with computehosts.api(cloud) as client:
        yield client


@pytest.fixture(scope="module")
def demo(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with computehosts.api(cloud, username="demo", project="demo") as client:
        yield client


@pytest.fixture(scope="module")
def alt(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with computehosts.api(cloud, username="alt_demo", project="alt_demo") as client:
        yield client


def create(client: httpx.Client, version: str, **group: Any) -> httpx.Response:
    return client.post(
        "/os-server-groups",
        json={"server_group": group},
        headers=computehosts.at(client, version),
    )


def made(client: httpx.Client, version: str, **group: Any) -> dict[str, Any]:
    response = create(client, version, **group)
    assert response.status_code == 200, response.text
    return dict(response.json()["server_group"])


def test_policies_before_264(demo: httpx.Client) -> None:
    group = made(demo, "2.1", name="g-old", policies=["anti-affinity"])
    assert group == {
        "id": group["id"],
        "name": "g-old",
        "policies": ["anti-affinity"],
        "metadata": {},
        "members": [],
    }
    # Soft policies arrive with 2.15; project and user ids with 2.13.
    assert create(demo, "2.14", name="g", policies=["soft-affinity"]).status_code == 400
    soft = made(demo, "2.15", name="g-soft", policies=["soft-affinity"])
    assert soft["policies"] == ["soft-affinity"] and soft["project_id"] and soft["user_id"]
    for bad in (["affinity", "anti-affinity"], [], ["other"]):
        assert create(demo, "2.1", name="g", policies=bad).status_code == 400, bad
    assert create(demo, "2.1", name="g", policy="affinity").status_code == 400
    for group_id in (group["id"], soft["id"]):
        assert demo.delete(f"/os-server-groups/{group_id}").status_code == 204


def test_policy_and_rules_from_264(demo: httpx.Client) -> None:
    group = made(
        demo, "2.64", name="g-rules", policy="anti-affinity", rules={"max_server_per_host": "3"}
    )
    assert (group["policy"], group["rules"]) == ("anti-affinity", {"max_server_per_host": 3})
    assert "policies" not in group and "metadata" not in group
    plain = made(demo, "2.64", name="g-plain", policy="affinity")
    assert plain["rules"] == {}
    rules_on_affinity = create(
        demo, "2.64", name="g", policy="affinity", rules={"max_server_per_host": 2}
    )
    assert rules_on_affinity.status_code == 400
    assert "anti-affinity" in rules_on_affinity.json()["badRequest"]["message"]
    for rules in ({"max_server_per_host": 0}, {"other": 1}):
        assert (
            create(demo, "2.64", name="g", policy="anti-affinity", rules=rules).status_code == 400
        )
    assert create(demo, "2.64", name="g", policies=["affinity"]).status_code == 400
    # Shown the old way to an old client.
    old = demo.get(f"/os-server-groups/{group['id']}").json()["server_group"]
    assert old["policies"] == ["anti-affinity"]
    for group_id in (group["id"], plain["id"]):
        demo.delete(f"/os-server-groups/{group_id}")


def test_visibility_and_all_projects(
    demo: httpx.Client, alt: httpx.Client, admin_http: httpx.Client
) -> None:
    mine = made(demo, "2.13", name="g-vis", policies=["affinity"])
    path = f"/os-server-groups/{mine['id']}"
    assert demo.get(path).json()["server_group"]["name"] == "g-vis"
    assert alt.get(path).status_code == 404
    assert alt.delete(path).status_code == 404
    assert mine["id"] not in {g["id"] for g in alt.get("/os-server-groups").json()["server_groups"]}
    # all_projects means something only to admins.
    everyone = alt.get("/os-server-groups", params={"all_projects": "true"}).json()
    assert mine["id"] not in {g["id"] for g in everyone["server_groups"]}
    listed = admin_http.get("/os-server-groups", params={"all_projects": "1"}).json()
    assert mine["id"] in {g["id"] for g in listed["server_groups"]}
    own = admin_http.get("/os-server-groups").json()["server_groups"]
    assert mine["id"] not in {g["id"] for g in own}
    assert admin_http.get(path).status_code == 200
    assert demo.delete(path).status_code == 204
    assert demo.get(path).status_code == 404


def test_paging_and_strict_query(alt: httpx.Client) -> None:
    ids = [made(alt, "2.1", name=f"page-{n}", policies=["affinity"])["id"] for n in range(3)]
    everything = [g["id"] for g in alt.get("/os-server-groups").json()["server_groups"]]
    assert everything == ids
    page = alt.get("/os-server-groups", params={"limit": 1, "offset": 1}).json()["server_groups"]
    assert [g["id"] for g in page] == ids[1:2]
    assert alt.get("/os-server-groups", params={"limit": -1}).status_code == 400
    assert alt.get("/os-server-groups", params={"foo": 1}).status_code == 200
    strict = alt.get("/os-server-groups", params={"foo": 1}, headers=computehosts.at(alt, "2.75"))
    assert strict.status_code == 400
    for group_id in ids:
        alt.delete(f"/os-server-groups/{group_id}")


def test_quota_server_groups(cloud: cloudfixture.Cloud, admin_http: httpx.Client) -> None:
    member = cloudfixture.ProjectMember(cloud, cloud.sdk())
    limit = admin_http.put(
        f"/os-quota-sets/{member.project.id}", json={"quota_set": {"server_groups": 1}}
    )
    assert limit.status_code == 200, limit.text
    with httpx.Client(
        base_url=cloud.base_url + "/compute/v2.1",
        headers={"X-Auth-Token": member.token()},
        timeout=30,
    ) as client:
        first = made(client, "2.1", name="q1", policies=["affinity"])
        over = create(client, "2.1", name="q2", policies=["affinity"])
        assert over.status_code == 403
        assert "server groups" in over.json()["forbidden"]["message"]
        client.delete(f"/os-server-groups/{first['id']}")
        assert create(client, "2.1", name="q3", policies=["affinity"]).status_code == 200


def test_sdk_and_cli(cloud: cloudfixture.Cloud) -> None:
    conn = cloud.sdk()
    group = conn.compute.create_server_group(name="sdk-group", policy="anti-affinity")
    assert conn.compute.get_server_group(group.id).name == "sdk-group"
    assert group.id in {g.id for g in conn.compute.server_groups()}
    conn.compute.delete_server_group(group)

    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(cloud.clouds_yaml))
    openstack = str(Path(sys.executable).parent / "openstack")
    result = subprocess.run(
        [
            openstack,
            "--os-cloud",
            "stackbox-admin",
            "server",
            "group",
            "create",
            "--policy",
            "anti-affinity",
            "cli-group",
            "-f",
            "value",
            "-c",
            "id",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    group_id = result.stdout.strip()
    with computehosts.api(cloud, "2.64") as client:
        shown = client.get(f"/os-server-groups/{group_id}").json()["server_group"]
        assert (shown["name"], shown["policy"]) == ("cli-group", "anti-affinity")
        client.delete(f"/os-server-groups/{group_id}")
