"""Flavors, flavor access and extra specs (Nova v2.1)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import cloudfixture


def compute(cloud: cloudfixture.Cloud, token: str, version: str = "2.96") -> httpx.Client:
    return httpx.Client(
        base_url=cloud.base_url + "/compute/v2.1",
        headers={"X-Auth-Token": token, "OpenStack-API-Version": f"compute {version}"},
        timeout=30,
    )


@pytest.fixture(scope="module")
def boss(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with compute(cloud, cloud.token()) as client:
        yield client


@pytest.fixture(scope="module")
def demo(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with compute(cloud, cloud.token("demo", project="demo")) as client:
        yield client


@pytest.fixture(scope="module")
def alt(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with compute(cloud, cloud.token("alt_demo", project="alt_demo")) as client:
        yield client


def fault(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    (name,) = body
    assert body[name]["code"] == status
    return str(body[name]["message"])


def make_flavor(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {"name": f"f-{uuid.uuid4().hex[:8]}", "ram": 128, "vcpus": 1, "disk": 1, **fields}
    response = client.post("/flavors", json={"flavor": body})
    assert response.status_code == 200, response.text
    flavor: dict[str, Any] = response.json()["flavor"]
    return flavor


def project_id(cloud: cloudfixture.Cloud, name: str) -> str:
    conn = cloud.sdk()
    return str(conn.identity.find_project(name, ignore_missing=False).id)


# --- flavors ---------------------------------------------------------------------------------


def test_sdk_create_list_show_delete(admin: Any) -> None:
    flavor = admin.compute.create_flavor(
        name="sdk-flavor", ram=256, vcpus=2, disk=5, ephemeral=3, swap=64, rxtx_factor=2.0
    )
    assert flavor.id and flavor.ram == 256 and flavor.vcpus == 2
    uuid.UUID(flavor.id)  # no id given: Nova makes a uuid
    found = admin.compute.get_flavor(flavor.id)
    assert (found.name, found.disk, found.ephemeral, found.swap) == ("sdk-flavor", 5, 3, 64)
    assert found.rxtx_factor == 2.0 and found.is_public
    assert "sdk-flavor" in [f.name for f in admin.compute.flavors()]
    admin.compute.delete_flavor(flavor.id)
    assert admin.compute.find_flavor("sdk-flavor") is None


def test_body_per_microversion(boss: httpx.Client) -> None:
    flavor = make_flavor(boss, id="mv-1", description="small one")
    old = boss.get("/flavors/mv-1", headers={"OpenStack-API-Version": "compute 2.1"}).json()
    assert old["flavor"]["swap"] == ""
    assert "description" not in old["flavor"] and "extra_specs" not in old["flavor"]
    assert set(old["flavor"]) == {
        "id",
        "name",
        "ram",
        "disk",
        "swap",
        "vcpus",
        "links",
        "rxtx_factor",
        "OS-FLV-EXT-DATA:ephemeral",
        "OS-FLV-DISABLED:disabled",
        "os-flavor-access:is_public",
    }
    mid = boss.get("/flavors/mv-1", headers={"OpenStack-API-Version": "compute 2.55"}).json()
    assert mid["flavor"]["description"] == "small one" and "extra_specs" not in mid["flavor"]
    new = boss.get("/flavors/mv-1").json()["flavor"]
    assert new["swap"] == 0 and new["extra_specs"] == {}
    assert flavor["extra_specs"] == {}
    links = {link["rel"]: link["href"] for link in new["links"]}
    assert links["self"].endswith("/compute/v2.1/flavors/mv-1")
    assert links["bookmark"].endswith("/compute/flavors/mv-1")
    brief = boss.get("/flavors", headers={"OpenStack-API-Version": "compute 2.54"}).json()
    assert all(set(f) == {"id", "name", "links"} for f in brief["flavors"])


def test_update_description_only_from_255(boss: httpx.Client) -> None:
    make_flavor(boss, id="desc-1")
    old = boss.put(
        "/flavors/desc-1",
        json={"flavor": {"description": "x"}},
        headers={"OpenStack-API-Version": "compute 2.54"},
    )
    fault(old, 404)
    changed = boss.put("/flavors/desc-1", json={"flavor": {"description": "now"}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["flavor"]["description"] == "now"
    fault(boss.put("/flavors/desc-1", json={"flavor": {"name": "other"}}), 400)
    fault(boss.put("/flavors/nope", json={"flavor": {"description": "x"}}), 404)


@pytest.mark.parametrize(
    "fields",
    [
        {"ram": 0},
        {"vcpus": -1},
        {"disk": "abc"},
        {"ram": 1.5},
        {"name": " lead"},
        {"name": ""},
        {"id": " bad"},
        {"rxtx_factor": 0},
        {"os-flavor-access:is_public": "maybe"},
        {"unknown": 1},
    ],
)
def test_bad_create_bodies(boss: httpx.Client, fields: dict[str, Any]) -> None:
    body = {"name": f"bad-{uuid.uuid4().hex[:6]}", "ram": 64, "vcpus": 1, "disk": 0, **fields}
    fault(boss.post("/flavors", json={"flavor": body}), 400)


def test_description_needs_255(boss: httpx.Client) -> None:
    body = {"flavor": {"name": "d-old", "ram": 64, "vcpus": 1, "disk": 0, "description": "x"}}
    response = boss.post("/flavors", json=body, headers={"OpenStack-API-Version": "compute 2.54"})
    fault(response, 400)


def test_string_numbers_and_int_id(boss: httpx.Client) -> None:
    response = boss.post(
        "/flavors",
        json={"flavor": {"name": "strs", "ram": "1024", "vcpus": "2", "disk": "0", "id": 7777}},
    )
    assert response.status_code == 200, response.text
    flavor = response.json()["flavor"]
    assert (flavor["id"], flavor["ram"], flavor["vcpus"]) == ("7777", 1024, 2)


def test_duplicates_are_409(boss: httpx.Client) -> None:
    make_flavor(boss, id="dup-id", name="dup-name")
    message = fault(
        boss.post(
            "/flavors",
            json={"flavor": {"name": "x1", "id": "dup-id", "ram": 1, "vcpus": 1, "disk": 0}},
        ),
        409,
    )
    assert message == "Flavor with ID dup-id already exists."
    message = fault(
        boss.post(
            "/flavors", json={"flavor": {"name": "dup-name", "ram": 1, "vcpus": 1, "disk": 0}}
        ),
        409,
    )
    assert message == "Flavor with name dup-name already exists."


def test_non_admin_cannot_manage(demo: httpx.Client, boss: httpx.Client) -> None:
    body = {"flavor": {"name": "mine", "ram": 64, "vcpus": 1, "disk": 0}}
    fault(demo.post("/flavors", json=body), 403)
    make_flavor(boss, id="keep-me")
    fault(demo.delete("/flavors/keep-me"), 403)
    assert demo.get("/flavors/keep-me").status_code == 200


def test_delete(boss: httpx.Client) -> None:
    make_flavor(boss, id="gone-1")
    response = boss.delete("/flavors/gone-1")
    assert response.status_code == 202 and response.content == b""
    fault(boss.get("/flavors/gone-1"), 404)
    assert fault(boss.delete("/flavors/gone-1"), 404) == "Flavor gone-1 could not be found."


def test_filters_sort_and_paging(boss: httpx.Client) -> None:
    for index, ram in enumerate((100000, 100001, 100002)):
        make_flavor(boss, id=f"big-{index}", name=f"big-{index}", ram=ram, disk=900 + index)
    big = boss.get("/flavors/detail", params={"minRam": 100001}).json()["flavors"]
    assert sorted(f["id"] for f in big) == ["big-1", "big-2"]
    assert [f["id"] for f in boss.get("/flavors", params={"minDisk": 902}).json()["flavors"]] == [
        "big-2"
    ]
    fault(boss.get("/flavors", params={"minRam": "lots"}), 400)
    ordered = boss.get("/flavors/detail", params={"sort_key": "memory_mb", "sort_dir": "desc"})
    rams = [f["ram"] for f in ordered.json()["flavors"]]
    assert rams == sorted(rams, reverse=True)
    fault(boss.get("/flavors", params={"sort_key": "colour"}), 400)
    first = boss.get("/flavors", params={"limit": 1, "sort_key": "name"}).json()
    assert len(first["flavors"]) == 1
    (link,) = first["flavors_links"]
    assert link["rel"] == "next" and "marker=" in link["href"]
    marker = first["flavors"][0]["id"]
    after = boss.get("/flavors", params={"marker": marker, "sort_key": "name"}).json()
    assert marker not in [f["id"] for f in after["flavors"]]
    fault(boss.get("/flavors", params={"marker": "no-such"}), 400)
    fault(boss.get("/flavors", params={"colour": "red"}), 400)  # 2.75+: unknown query
    old = boss.get(
        "/flavors", params={"colour": "red"}, headers={"OpenStack-API-Version": "compute 2.74"}
    )
    assert old.status_code == 200


def test_private_flavor_visibility_and_access(
    cloud: cloudfixture.Cloud, boss: httpx.Client, demo: httpx.Client, alt: httpx.Client
) -> None:
    make_flavor(boss, id="priv-1", name="priv-1", **{"os-flavor-access:is_public": False})
    # Admins see private flavors only when asking for them (is_public=false / none).
    assert "priv-1" not in [f["id"] for f in boss.get("/flavors").json()["flavors"]]
    for value in ("false", "f", "no", "0", "none"):
        listed = boss.get("/flavors", params={"is_public": value}).json()["flavors"]
        assert "priv-1" in [f["id"] for f in listed], value
    fault(boss.get("/flavors", params={"is_public": "maybe"}), 400)
    fault(demo.get("/flavors/priv-1"), 404)
    assert "priv-1" not in [f["id"] for f in demo.get("/flavors").json()["flavors"]]
    assert boss.get("/flavors/priv-1/os-flavor-access").json() == {"flavor_access": []}

    demo_project = project_id(cloud, "demo")
    added = boss.post("/flavors/priv-1/action", json={"addTenantAccess": {"tenant": demo_project}})
    assert added.status_code == 200, added.text
    assert added.json() == {"flavor_access": [{"flavor_id": "priv-1", "tenant_id": demo_project}]}
    again = boss.post("/flavors/priv-1/action", json={"addTenantAccess": {"tenant": demo_project}})
    fault(again, 409)
    fault(boss.post("/flavors/priv-1/action", json={"addTenantAccess": {"tenant": "nope"}}), 400)
    # The project with access sees it (show and list), another project does not.
    assert demo.get("/flavors/priv-1").status_code == 200
    assert "priv-1" in [f["id"] for f in demo.get("/flavors").json()["flavors"]]
    fault(alt.get("/flavors/priv-1"), 404)
    fault(
        demo.post("/flavors/priv-1/action", json={"removeTenantAccess": {"tenant": demo_project}}),
        403,
    )
    removed = boss.post(
        "/flavors/priv-1/action", json={"removeTenantAccess": {"tenant": demo_project}}
    )
    assert removed.json() == {"flavor_access": []}
    fault(
        boss.post("/flavors/priv-1/action", json={"removeTenantAccess": {"tenant": demo_project}}),
        404,
    )
    fault(demo.get("/flavors/priv-1"), 404)
    fault(boss.post("/flavors/priv-1/action", json={"fly": {}}), 400)


def test_access_list_of_public_flavor(boss: httpx.Client, cloud: cloudfixture.Cloud) -> None:
    make_flavor(boss, id="pub-1")
    message = fault(boss.get("/flavors/pub-1/os-flavor-access"), 404)
    assert message == "Access list not available for public flavors."
    body = {"addTenantAccess": {"tenant": project_id(cloud, "demo")}}
    fault(boss.post("/flavors/pub-1/action", json=body), 409)


def test_extra_specs(boss: httpx.Client, demo: httpx.Client, admin: Any) -> None:
    make_flavor(boss, id="xs-1")
    flavor = admin.compute.get_flavor("xs-1")
    admin.compute.create_flavor_extra_specs(flavor, {"hw:cpu_policy": "dedicated", "k1": "v1"})
    merged = boss.post("/flavors/xs-1/os-extra_specs", json={"extra_specs": {"k2": 2}})
    assert merged.json() == {"extra_specs": {"k2": 2}}
    listed = boss.get("/flavors/xs-1/os-extra_specs").json()["extra_specs"]
    assert listed == {"hw:cpu_policy": "dedicated", "k1": "v1", "k2": "2"}
    assert demo.get("/flavors/xs-1/os-extra_specs/k1").json() == {"k1": "v1"}
    assert boss.get("/flavors/xs-1").json()["flavor"]["extra_specs"] == listed
    assert boss.put("/flavors/xs-1/os-extra_specs/k1", json={"k1": "v9"}).json() == {"k1": "v9"}
    fault(boss.put("/flavors/xs-1/os-extra_specs/k1", json={"k2": "x"}), 400)
    fault(boss.put("/flavors/xs-1/os-extra_specs/k1", json={"k1": "a", "k2": "b"}), 400)
    fault(demo.put("/flavors/xs-1/os-extra_specs/k1", json={"k1": "x"}), 403)
    fault(demo.post("/flavors/xs-1/os-extra_specs", json={"extra_specs": {"a": "b"}}), 403)
    deleted = boss.delete("/flavors/xs-1/os-extra_specs/k2")
    assert deleted.status_code == 200
    message = fault(boss.get("/flavors/xs-1/os-extra_specs/k2"), 404)
    assert message == "Flavor xs-1 has no extra specs with key k2."
    fault(boss.delete("/flavors/xs-1/os-extra_specs/k2"), 404)
    fault(boss.post("/flavors/xs-1/os-extra_specs", json={"extra_specs": {"bad/key": "x"}}), 400)
    fault(boss.get("/flavors/none-such/os-extra_specs"), 404)
    # 2.86 checks the values of extra specs Nova knows; before it anything goes.
    fault(
        boss.post("/flavors/xs-1/os-extra_specs", json={"extra_specs": {"hw:cpu_policy": "odd"}}),
        400,
    )
    older = boss.post(
        "/flavors/xs-1/os-extra_specs",
        json={"extra_specs": {"hw:cpu_policy": "odd"}},
        headers={"OpenStack-API-Version": "compute 2.85"},
    )
    assert older.status_code == 200
    assert (
        boss.post(
            "/flavors/xs-1/os-extra_specs", json={"extra_specs": {"foo:bar": "anything"}}
        ).status_code
        == 200
    )


def test_cli_flavor_create_with_property(cloud: cloudfixture.Cloud) -> None:
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(cloud.clouds_yaml))
    cli = str(Path(os.environ.get("VIRTUAL_ENV", ".venv")) / "bin" / "openstack")
    if not Path(cli).exists():
        cli = ".venv/bin/openstack"
    result = subprocess.run(
        [
            cli,
            "--os-cloud",
            "stackbox-admin",
            "flavor",
            "create",
            "--ram",
            "64",
            "--disk",
            "1",
            "--vcpus",
            "1",
            "--property",
            "hw_rng:allowed=True",
            "--private",
            "-f",
            "json",
            "cli-flavor",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    shown = subprocess.run(
        [cli, "--os-cloud", "stackbox-admin", "flavor", "show", "cli-flavor", "-f", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert '"hw_rng:allowed": "True"' in shown.stdout
    assert '"os-flavor-access:is_public": false' in shown.stdout
