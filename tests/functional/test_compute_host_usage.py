"""What the host APIs say once servers run: hypervisor usage, tenant usage, server group
members, migrations, and the rules that protect hosts with servers.

Servers are booted through the API onto the all-in-one's own host (its compute agent
runs the fake driver); no row is written by hand here.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stackbox.compute import runtime, server_groups
from tests import cloudfixture
from tests.functional import computehosts

FLAVOR = "42"  # DevStack's m1.nano: 64 MB, 1 vCPU, 1 GB


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cloudfixture.Cloud]:
    with cloudfixture.in_process(
        Path(tmp_path_factory.mktemp("hostusage")),
        compute={"create_defaults": True},
        network={"create_defaults": True},
    ) as running:
        yield running


@pytest.fixture(scope="module")
def http(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with computehosts.api(cloud, "2.96") as client:
        yield client


@pytest.fixture(scope="module")
def demo(cloud: cloudfixture.Cloud) -> Iterator[httpx.Client]:
    with computehosts.api(cloud, "2.96", username="demo", project="demo") as client:
        yield client


@pytest.fixture(scope="module")
def image_id(cloud: cloudfixture.Cloud) -> str:
    images = [i for i in cloud.sdk().image.images() if i.name == "stackbox-tiny"]
    assert images, "the default image is missing"
    return str(images[0].id)


@pytest.fixture(scope="module")
def host(http: httpx.Client) -> str:
    local = runtime.get().hostname
    deadline = time.monotonic() + 20
    while not http.get("/os-services", params={"host": local}).json()["services"]:
        assert time.monotonic() < deadline, "the local compute agent did not register"
        time.sleep(0.2)
    return local


def boot(client: httpx.Client, image_id: str, name: str, **extra: Any) -> dict[str, Any]:
    body = {
        "server": {
            "name": name,
            "imageRef": image_id,
            "flavorRef": FLAVOR,
            "networks": "none",
            **extra.pop("server", {}),
        },
        **extra,
    }
    response = client.post("/servers", json=body)
    assert response.status_code == 202, response.text
    server_id = response.json()["server"]["id"]
    return wait(client, server_id, "ACTIVE")


def wait(client: httpx.Client, server_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        response = client.get(f"/servers/{server_id}")
        if status == "DELETED" and response.status_code == 404:
            return {}
        server = response.json()["server"]
        if server["status"] == status:
            return dict(server)
        assert server["status"] != "ERROR", server
        assert time.monotonic() < deadline, f"{server_id} stayed {server['status']}"
        time.sleep(0.1)


def node_of(http: httpx.Client, host: str, version: str = "2.1", **params: Any) -> dict[str, Any]:
    listed = http.get(
        "/os-hypervisors/detail", params=params, headers=computehosts.at(http, version)
    ).json()["hypervisors"]
    return next(h for h in listed if h["service"]["host"] == host)


def test_hypervisor_counts_claims_and_servers(
    http: httpx.Client, demo: httpx.Client, image_id: str, host: str
) -> None:
    before = node_of(http, host)
    server = boot(demo, image_id, "hv-usage")
    after = node_of(http, host)
    assert after["running_vms"] == before["running_vms"] + 1
    assert after["vcpus_used"] == before["vcpus_used"] + 1
    assert after["memory_mb_used"] == before["memory_mb_used"] + 64
    assert after["local_gb_used"] == before["local_gb_used"] + 1
    assert after["free_ram_mb"] == after["memory_mb"] - after["memory_mb_used"]
    listed = node_of(http, host, "2.53", with_servers="true")
    assert {"name": "hv-usage", "uuid": server["id"]} in listed["servers"]
    assert "servers" not in node_of(http, host, "2.53")
    on_node = http.get(
        f"/os-hypervisors/{after['hypervisor_hostname']}/servers",
        headers=computehosts.at(http, "2.52"),
    ).json()
    assert server["id"] in {s["uuid"] for s in on_node["hypervisors"][0]["servers"]}
    stats = http.get("/os-hypervisors/statistics", headers=computehosts.at(http, "2.87")).json()[
        "hypervisor_statistics"
    ]
    assert stats["running_vms"] >= 1
    shown = http.get(f"/os-hosts/{host}", headers=computehosts.at(http, "2.42")).json()["host"]
    projects = {r["resource"]["project"] for r in shown}
    assert server["tenant_id"] in projects

    # A host with servers keeps its service and its zone.
    service = http.get("/os-services", params={"host": host, "binary": "nova-compute"}).json()[
        "services"
    ][0]
    refused = http.delete(f"/os-services/{service['id']}")
    assert refused.status_code == 409, refused.text
    zoned = http.post(
        "/os-aggregates", json={"aggregate": {"name": "busy-zone", "availability_zone": "busy"}}
    ).json()["aggregate"]
    moved = http.post(f"/os-aggregates/{zoned['id']}/action", json={"add_host": {"host": host}})
    assert moved.status_code == 409, moved.text
    assert "instance" in moved.json()["conflictingRequest"]["message"]
    http.delete(f"/os-aggregates/{zoned['id']}")

    assert demo.delete(f"/servers/{server['id']}").status_code == 204
    wait(demo, server["id"], "DELETED")
    assert node_of(http, host)["running_vms"] == before["running_vms"]


def _usage(client: httpx.Client, project: str, **params: Any) -> httpx.Response:
    return client.get(f"/os-simple-tenant-usage/{project}", params=params)


def test_tenant_usage_counts_running_and_deleted_servers(
    http: httpx.Client, demo: httpx.Client, image_id: str, host: str
) -> None:
    start = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)).strftime(
        "%Y-%m-%dT%H:%M:%S"
    )
    kept = boot(demo, image_id, "usage-kept")
    gone = boot(demo, image_id, "usage-gone")
    time.sleep(1.1)
    demo.delete(f"/servers/{gone['id']}")
    wait(demo, gone["id"], "DELETED")
    project = kept["tenant_id"]

    usage = _usage(demo, project, start=start).json()["tenant_usage"]
    by_id = {u["instance_id"]: u for u in usage["server_usages"]}
    assert by_id[kept["id"]]["state"] == "active" and by_id[kept["id"]]["ended_at"] is None
    assert by_id[gone["id"]]["state"] == "terminated" and by_id[gone["id"]]["ended_at"]
    assert by_id[gone["id"]]["uptime"] >= 1
    entry = by_id[kept["id"]]
    assert (entry["flavor"], entry["vcpus"], entry["memory_mb"], entry["local_gb"]) == (
        "m1.nano",
        1,
        64,
        1,
    )
    assert usage["total_hours"] > 0
    assert usage["total_memory_mb_usage"] == pytest.approx(
        sum(u["hours"] * u["memory_mb"] for u in usage["server_usages"])
    )

    listed = http.get("/os-simple-tenant-usage", params={"start": start, "detailed": "1"}).json()[
        "tenant_usages"
    ]
    assert project in {u["tenant_id"] for u in listed}
    brief = http.get("/os-simple-tenant-usage", params={"start": start}).json()["tenant_usages"]
    assert all("server_usages" not in u for u in brief)

    v240 = computehosts.at(http, "2.40")
    page = http.get(
        f"/os-simple-tenant-usage/{project}", params={"start": start, "limit": 1}, headers=v240
    ).json()
    assert len(page["tenant_usage"]["server_usages"]) == 1
    assert "marker=" in page["tenant_usage_links"][0]["href"]
    second = http.get(page["tenant_usage_links"][0]["href"], headers=v240).json()
    assert (
        second["tenant_usage"]["server_usages"][0]["instance_id"]
        != (page["tenant_usage"]["server_usages"][0]["instance_id"])
    )
    missing = http.get(
        f"/os-simple-tenant-usage/{project}", params={"marker": "nope"}, headers=v240
    )
    assert missing.status_code == 400

    # Before anything launched there is nothing; windows must be ordered and readable.
    assert _usage(demo, project, start="2001-01-01T00:00:00", end="2001-01-02T00:00:00").json() == {
        "tenant_usage": {}
    }
    assert (
        _usage(demo, project, start="2002-01-01T00:00:00", end="2001-01-01T00:00:00").status_code
        == 400
    )
    assert _usage(demo, project, start="yesterday").status_code == 400
    assert demo.get("/os-simple-tenant-usage").status_code == 403
    assert _usage(demo, "someone-else").status_code == 403
    demo.delete(f"/servers/{kept['id']}")


def test_server_group_members_and_member_quota(
    cloud: cloudfixture.Cloud, http: httpx.Client, demo: httpx.Client, image_id: str, host: str
) -> None:
    group = demo.post(
        "/os-server-groups", json={"server_group": {"name": "members", "policy": "affinity"}}
    ).json()["server_group"]
    server = boot(demo, image_id, "grouped", **{"os:scheduler_hints": {"group": group["id"]}})
    shown = demo.get(f"/os-server-groups/{group['id']}").json()["server_group"]
    assert shown["members"] == [server["id"]]
    db = computehosts.database(cloud)
    assert db.run(lambda s: server_groups.members_hosts(s, group["id"]), write=False) == {host: 1}

    project = server["tenant_id"]
    http.put(f"/os-quota-sets/{project}", json={"quota_set": {"server_group_members": 1}})
    over = demo.post(
        "/servers",
        json={
            "server": {
                "name": "one-too-many",
                "imageRef": image_id,
                "flavorRef": FLAVOR,
                "networks": "none",
            },
            "os:scheduler_hints": {"group": group["id"]},
        },
    )
    assert over.status_code == 403, over.text
    http.put(f"/os-quota-sets/{project}", json={"quota_set": {"server_group_members": 10}})

    demo.delete(f"/servers/{server['id']}")
    wait(demo, server["id"], "DELETED")
    assert demo.get(f"/os-server-groups/{group['id']}").json()["server_group"]["members"] == []
    demo.delete(f"/os-server-groups/{group['id']}")
    db.dispose()


def test_migrations_lists_and_server_live_migrations(
    http: httpx.Client, demo: httpx.Client, image_id: str, host: str
) -> None:
    listed = http.get("/os-migrations")
    assert listed.status_code == 200
    assert demo.get("/os-migrations").status_code == 403
    v259 = computehosts.at(http, "2.59")
    assert http.get("/os-migrations", params={"marker": "nope"}, headers=v259).status_code == 400
    assert http.get("/os-migrations", params={"bogus": 1}, headers=v259).status_code == 400
    since = http.get(
        "/os-migrations",
        params={"changes-since": "2030-01-01T00:00:00Z", "changes-before": "2029-01-01T00:00:00Z"},
        headers=computehosts.at(http, "2.66"),
    )
    assert since.status_code == 400

    server = boot(demo, image_id, "no-live-migration")
    path = f"/servers/{server['id']}/migrations"
    assert http.get(path, headers=computehosts.at(http, "2.22")).status_code == 404
    assert http.get(path, headers=computehosts.at(http, "2.23")).json() == {"migrations": []}
    assert http.get(path).json() == {"migrations": []}
    # Listing a server's live migrations takes a project manager (Nova's default).
    assert demo.get(path).status_code == 403
    assert http.get(f"{path}/1").status_code == 404
    complete = http.post(f"{path}/1/action", json={"force_complete": None})
    assert complete.status_code == 409, complete.text
    assert http.delete(f"{path}/1").status_code == 409
    assert demo.get(f"/servers/{server['id']}/migrations/1").status_code == 403
    demo.delete(f"/servers/{server['id']}")


def test_resize_shows_in_os_migrations(
    http: httpx.Client, demo: httpx.Client, image_id: str, host: str
) -> None:
    server = boot(demo, image_id, "resized")
    response = demo.post(f"/servers/{server['id']}/action", json={"resize": {"flavorRef": "84"}})
    assert response.status_code == 202, response.text
    wait(demo, server["id"], "VERIFY_RESIZE")

    def listed(version: str, **params: Any) -> dict[str, Any]:
        response = http.get(
            "/os-migrations",
            params={"instance_uuid": server["id"], **params},
            headers=computehosts.at(http, version),
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    old = listed("2.1")["migrations"]
    assert len(old) == 1 and "migration_type" not in old[0] and "uuid" not in old[0]
    row = old[0]
    assert row["instance_uuid"] == server["id"] and row["source_compute"] == host
    assert isinstance(row["old_instance_type_id"], int)
    assert isinstance(row["new_instance_type_id"], int)
    assert row["old_instance_type_id"] != row["new_instance_type_id"]
    typed = listed("2.23")["migrations"][0]
    assert typed["migration_type"] == "resize" and "links" not in typed
    assert listed("2.23", migration_type="live-migration")["migrations"] == []
    assert listed("2.1", status="no-such-status")["migrations"] == []
    newest = listed("2.80", limit=1)
    entry = newest["migrations"][0]
    assert entry["uuid"] and entry["project_id"] == server["tenant_id"] and entry["user_id"]
    assert "marker=" in newest["migrations_links"][0]["href"]
    after = http.get(newest["migrations_links"][0]["href"], headers=computehosts.at(http, "2.80"))
    assert after.json()["migrations"] == []

    demo.post(f"/servers/{server['id']}/action", json={"confirmResize": None})
    wait(demo, server["id"], "ACTIVE")
    demo.delete(f"/servers/{server['id']}")
