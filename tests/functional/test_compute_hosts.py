"""Compute services, hypervisors, availability zones, os-hosts and the extension list.

Hosts here are registered with ``computehosts.register_host`` (a STAND-IN for the
compute agents' heartbeats, see that module); everything else goes through the
API, openstacksdk and the ``openstack`` CLI.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stackbox.compute import runtime
from stackbox.db import session as db_session
from tests import cloudfixture
from tests.functional import computehosts

UP_A, UP_B, DOWN = "hv-a", "hv-b", "hv-down"


@pytest.fixture(scope="module")
def db(cloud: cloudfixture.Cloud) -> Iterator[db_session.Database]:
    database = computehosts.database(cloud)
    computehosts.register_host(database, UP_A)
    computehosts.register_host(database, UP_B, vcpus=4, memory_mb=8192, local_gb=100)
    long_ago = computehosts.now() - datetime.timedelta(hours=1)
    computehosts.register_host(database, DOWN, seen=long_ago)
    yield database
    database.dispose()


@pytest.fixture(scope="module")
def http(cloud: cloudfixture.Cloud, db: db_session.Database) -> Iterator[httpx.Client]:
    with computehosts.api(cloud) as client:
        yield client


@pytest.fixture(scope="module")
def demo(cloud: cloudfixture.Cloud, db: db_session.Database) -> Iterator[httpx.Client]:
    with computehosts.api(cloud, "2.1", username="demo", project="demo") as client:
        yield client


def services(http: httpx.Client, version: str = "2.1", **params: Any) -> list[dict[str, Any]]:
    response = http.get("/os-services", params=params, headers=computehosts.at(http, version))
    assert response.status_code == 200, response.text
    return list(response.json()["services"])


def service_of(
    http: httpx.Client, host: str, version: str = "2.1", binary: str = "nova-compute"
) -> dict[str, Any]:
    found = services(http, version, host=host, binary=binary)
    assert len(found) == 1, found
    return found[0]


def cli(cloud: cloudfixture.Cloud, *args: str) -> Any:
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(cloud.clouds_yaml))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "openstack"), "--os-cloud", "stackbox-admin", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if "-f" in args else result.stdout


# --- services -------------------------------------------------------------------------------


def test_services_list_state_zone_and_ids_per_version(http: httpx.Client) -> None:
    up = service_of(http, UP_A)
    assert up["binary"] == "nova-compute"
    assert up["zone"] == "nova"
    assert (up["state"], up["status"]) == ("up", "enabled")
    assert isinstance(up["id"], int)
    assert up["disabled_reason"] is None
    assert "forced_down" not in up
    datetime.datetime.fromisoformat(up["updated_at"])
    assert service_of(http, DOWN)["state"] == "down"

    assert service_of(http, UP_A, "2.11")["forced_down"] is False
    v253 = service_of(http, UP_A, "2.53")
    assert len(v253["id"]) == 36 and v253["id"].count("-") == 4


def test_services_filters_and_strict_query(http: httpx.Client) -> None:
    assert [s["host"] for s in services(http, binary="nova-compute", host=UP_B)] == [UP_B]
    assert services(http, host=UP_A, binary="xxx") == []
    assert services(http, host="xxx", binary="nova-compute") == []
    # Unknown parameters are ignored before 2.75 and refused from it.
    assert len(services(http, xxx="1")) == len(services(http))
    response = http.get("/os-services", params={"xxx": "1"}, headers=computehosts.at(http, "2.75"))
    assert response.status_code == 400, response.text
    assert "badRequest" in response.json()


def test_services_sdk_lists_compute_services(
    cloud: cloudfixture.Cloud, db: db_session.Database
) -> None:
    admin = cloud.sdk()
    hosts = {s.host: s for s in admin.compute.services() if s.binary == "nova-compute"}
    assert {UP_A, UP_B, DOWN} <= set(hosts)
    assert hosts[UP_A].state == "up" and hosts[DOWN].state == "down"


def test_services_non_admin_is_forbidden(demo: httpx.Client) -> None:
    response = demo.get("/os-services")
    assert response.status_code == 403
    assert response.json()["forbidden"]["code"] == 403


def test_legacy_disable_enable_and_force_down(http: httpx.Client) -> None:
    body = {"host": UP_B, "binary": "nova-compute"}
    response = http.put(
        "/os-services/disable-log-reason", json={**body, "disabled_reason": "maintenance"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "service": {**body, "status": "disabled", "disabled_reason": "maintenance"}
    }
    shown = service_of(http, UP_B)
    assert (shown["status"], shown["disabled_reason"]) == ("disabled", "maintenance")

    response = http.put("/os-services/enable", json=body)
    assert response.json() == {"service": {**body, "status": "enabled"}}
    assert service_of(http, UP_B)["disabled_reason"] is None

    assert http.put("/os-services/disable-log-reason", json=body).status_code == 400
    # force-down exists from 2.11.
    assert http.put("/os-services/force-down", json=body).status_code == 404
    v211 = computehosts.at(http, "2.11")
    response = http.put("/os-services/force-down", json={**body, "forced_down": True}, headers=v211)
    assert response.json() == {"service": {**body, "forced_down": True}}
    assert service_of(http, UP_B, "2.11")["state"] == "down"
    http.put("/os-services/force-down", json={**body, "forced_down": "false"}, headers=v211)
    assert service_of(http, UP_B, "2.11")["state"] == "up"


def test_legacy_update_errors(http: httpx.Client) -> None:
    missing = http.put("/os-services/disable", json={"host": "nowhere", "binary": "nova-compute"})
    assert missing.status_code == 404, missing.text
    assert "nowhere" in missing.json()["itemNotFound"]["message"]
    other = http.put("/os-services/disable", json={"host": UP_A, "binary": "nova-scheduler"})
    assert other.status_code == 400
    assert http.put("/os-services/reboot", json={"host": UP_A, "binary": "x"}).status_code == 404
    assert http.put("/os-services/disable", json={"host": UP_A}).status_code == 400


def test_update_by_uuid_from_253(http: httpx.Client) -> None:
    v253 = computehosts.at(http, "2.53")
    service_id = service_of(http, UP_A, "2.53")["id"]
    response = http.put(
        f"/os-services/{service_id}",
        json={"status": "disabled", "disabled_reason": "testing"},
        headers=v253,
    )
    assert response.status_code == 200, response.text
    shown = response.json()["service"]
    assert (shown["id"], shown["status"], shown["disabled_reason"]) == (
        service_id,
        "disabled",
        "testing",
    )
    assert shown["zone"] == "nova" and shown["forced_down"] is False
    assert shown["updated_at"] is not None

    def put(body: dict[str, Any], target: str = service_id) -> httpx.Response:
        return http.put(f"/os-services/{target}", json=body, headers=v253)

    assert put({"status": "enabled", "disabled_reason": "x"}).status_code == 400
    assert put({"disabled_reason": "only a reason"}).status_code == 400
    assert put({"status": "enabled"}).json()["service"]["disabled_reason"] is None
    assert put({"status": "enabled"}, "not-a-uuid").status_code == 400
    assert put({"status": "enabled"}, "8f2a7d8e-0d3e-4e0c-9d39-6c2c4a4c4f00").status_code == 404
    assert put({"forced_down": "yes"}).json()["service"]["state"] == "down"
    assert put({"forced_down": False}).json()["service"]["state"] == "up"


def test_cli_disables_and_enables_a_compute_service(
    cloud: cloudfixture.Cloud, http: httpx.Client
) -> None:
    cli(cloud, "compute", "service", "set", "--disable", UP_B, "nova-compute")
    listed = cli(cloud, "compute", "service", "list", "--host", UP_B, "-f", "json")
    assert [row["Status"] for row in listed] == ["disabled"]
    cli(cloud, "compute", "service", "set", "--enable", UP_B, "nova-compute")
    assert service_of(http, UP_B)["status"] == "enabled"


def test_delete_service_takes_its_node_and_aggregate_memberships(
    http: httpx.Client, db: db_session.Database
) -> None:
    computehosts.register_host(db, "hv-gone")
    aggregate = http.post("/os-aggregates", json={"aggregate": {"name": "gone-agg"}}).json()
    agg_id = aggregate["aggregate"]["id"]
    added = http.post(f"/os-aggregates/{agg_id}/action", json={"add_host": {"host": "hv-gone"}})
    assert added.status_code == 200, added.text
    gone = service_of(http, "hv-gone")

    assert http.delete("/os-services/not-a-number").status_code == 400
    assert http.delete("/os-services/999999").status_code == 404
    response = http.delete(f"/os-services/{gone['id']}")
    assert response.status_code == 204, response.text
    assert services(http, host="hv-gone") == []
    hypervisors = http.get("/os-hypervisors").json()["hypervisors"]
    assert "hv-gone.example" not in {h["hypervisor_hostname"] for h in hypervisors}
    assert http.get(f"/os-aggregates/{agg_id}").json()["aggregate"]["hosts"] == []
    http.delete(f"/os-aggregates/{agg_id}")

    computehosts.register_host(db, "hv-gone2")
    v253 = computehosts.at(http, "2.53")
    gone_id = service_of(http, "hv-gone2", "2.53")["id"]
    assert http.delete("/os-services/123", headers=v253).status_code == 400
    assert http.delete(f"/os-services/{gone_id}", headers=v253).status_code == 204


# --- hypervisors ----------------------------------------------------------------------------


def hypervisor(http: httpx.Client, host: str, version: str = "2.1") -> dict[str, Any]:
    listed = http.get("/os-hypervisors/detail", headers=computehosts.at(http, version))
    assert listed.status_code == 200, listed.text
    found = [h for h in listed.json()["hypervisors"] if h["service"]["host"] == host]
    assert len(found) == 1
    return found[0]


def test_hypervisor_detail_fields_per_version(http: httpx.Client) -> None:
    old = hypervisor(http, UP_B)
    assert old["hypervisor_hostname"] == f"{UP_B}.example"
    assert (old["vcpus"], old["memory_mb"], old["local_gb"]) == (4, 8192, 100)
    assert (old["vcpus_used"], old["memory_mb_used"], old["local_gb_used"]) == (0, 0, 0)
    assert (old["free_ram_mb"], old["free_disk_gb"], old["running_vms"]) == (8192, 100, 0)
    assert old["current_workload"] == 0
    assert json.loads(old["cpu_info"]) == {"arch": "x86_64", "model": "fake"}
    assert old["state"] == "up" and old["status"] == "enabled"
    assert isinstance(old["id"], int) and isinstance(old["service"]["id"], int)
    assert old["host_ip"] == "192.0.2.10"

    assert hypervisor(http, UP_B, "2.28")["cpu_info"] == {"arch": "x86_64", "model": "fake"}
    v253 = hypervisor(http, UP_B, "2.53")
    assert len(v253["id"]) == 36 and len(v253["service"]["id"]) == 36
    v288 = hypervisor(http, UP_B, "2.88")
    assert "vcpus" not in v288 and "cpu_info" not in v288 and "running_vms" not in v288
    assert "uptime" in v288
    assert hypervisor(http, DOWN)["state"] == "down"


def test_hypervisor_show_uptime_and_statistics(http: httpx.Client) -> None:
    listed = http.get("/os-hypervisors").json()["hypervisors"]
    mine = {h["hypervisor_hostname"]: h for h in listed}
    node = mine[f"{UP_A}.example"]
    assert set(node) == {"id", "hypervisor_hostname", "state", "status"}
    shown = http.get(f"/os-hypervisors/{node['id']}").json()["hypervisor"]
    assert shown["hypervisor_hostname"] == f"{UP_A}.example"
    assert http.get("/os-hypervisors/99999").status_code == 404
    assert http.get("/os-hypervisors/abc").status_code == 404
    v253 = computehosts.at(http, "2.53")
    assert http.get("/os-hypervisors/abc", headers=v253).status_code == 400
    # Not this machine's host: nothing reports its uptime (Nova's 501).
    assert http.get(f"/os-hypervisors/{node['id']}/uptime").status_code == 501

    stats = http.get("/os-hypervisors/statistics").json()["hypervisor_statistics"]
    assert stats["count"] >= 3 and stats["vcpus"] >= 8 + 4 + 8
    v288 = computehosts.at(http, "2.88")
    assert http.get("/os-hypervisors/statistics", headers=v288).status_code == 404
    assert http.get(f"/os-hypervisors/{node['id']}/uptime", headers=v288).status_code == 404


def test_hypervisor_search_paging_and_patterns(http: httpx.Client) -> None:
    found = http.get("/os-hypervisors/hv-a/search").json()["hypervisors"]
    assert [h["hypervisor_hostname"] for h in found] == [f"{UP_A}.example"]
    servers = http.get("/os-hypervisors/hv-a/servers").json()["hypervisors"]
    assert "servers" not in servers[0]
    assert http.get("/os-hypervisors/nomatch/search").status_code == 404
    v253 = computehosts.at(http, "2.53")
    assert http.get("/os-hypervisors/hv-a/search", headers=v253).status_code == 404

    by_pattern = http.get(
        "/os-hypervisors", params={"hypervisor_hostname_pattern": "HV-B"}, headers=v253
    )
    assert [h["hypervisor_hostname"] for h in by_pattern.json()["hypervisors"]] == [
        f"{UP_B}.example"
    ]
    both = http.get(
        "/os-hypervisors",
        params={"hypervisor_hostname_pattern": "hv", "limit": 1},
        headers=v253,
    )
    assert both.status_code == 400
    with_servers = http.get(
        "/os-hypervisors/detail",
        params={"with_servers": "true"},
        headers=computehosts.at(http, "2.75"),
    )
    assert all(h["servers"] == [] for h in with_servers.json()["hypervisors"])
    bad = http.get("/os-hypervisors", params={"with_servers": "maybe"}, headers=v253)
    assert bad.status_code == 400
    assert http.get("/os-hypervisors", params={"x": 1}, headers=v253).status_code == 400

    v233 = computehosts.at(http, "2.33")
    first = http.get("/os-hypervisors", params={"limit": 1}, headers=v233).json()
    assert len(first["hypervisors"]) == 1
    next_href = first["hypervisors_links"][0]["href"]
    assert "marker=" in next_href
    second = http.get(next_href, headers=v233).json()["hypervisors"]
    assert second and second[0]["id"] != first["hypervisors"][0]["id"]
    assert http.get("/os-hypervisors", params={"marker": "999999"}, headers=v233).status_code == 400


def test_hypervisors_sdk_and_non_admin(
    cloud: cloudfixture.Cloud, demo: httpx.Client, db: db_session.Database
) -> None:
    names = {h.name for h in cloud.sdk().compute.hypervisors(details=True)}
    assert {f"{UP_A}.example", f"{UP_B}.example"} <= names
    for path in ("/os-hypervisors", "/os-hypervisors/detail", "/os-hypervisors/statistics"):
        assert demo.get(path).status_code == 403


# --- availability zones and os-hosts --------------------------------------------------------


def test_availability_zones_follow_aggregates(
    cloud: cloudfixture.Cloud, http: httpx.Client, demo: httpx.Client, db: db_session.Database
) -> None:
    computehosts.register_host(db, "hv-z1")
    computehosts.register_host(db, "hv-z2")
    aggregate = http.post(
        "/os-aggregates", json={"aggregate": {"name": "zone-agg", "availability_zone": "az-one"}}
    ).json()["aggregate"]
    http.post(f"/os-aggregates/{aggregate['id']}/action", json={"add_host": {"host": "hv-z1"}})
    zones = {
        z["zoneName"]: z for z in demo.get("/os-availability-zone").json()["availabilityZoneInfo"]
    }
    assert zones["az-one"] == {
        "zoneName": "az-one",
        "zoneState": {"available": True},
        "hosts": None,
    }
    assert zones["nova"]["zoneState"]["available"] is True
    assert service_of(http, "hv-z1")["zone"] == "az-one"

    detail = http.get("/os-availability-zone/detail").json()["availabilityZoneInfo"]
    by_name = {z["zoneName"]: z for z in detail}
    assert set(by_name["az-one"]["hosts"]) == {"hv-z1"}
    compute = by_name["az-one"]["hosts"]["hv-z1"]["nova-compute"]
    assert compute["available"] is True and compute["active"] is True
    assert "hv-z2" in by_name["nova"]["hosts"]
    assert demo.get("/os-availability-zone/detail").status_code == 403
    assert {z.name for z in cloud.sdk().compute.availability_zones()} >= {"az-one", "nova"}

    # A zone whose only host is disabled is listed as unavailable.
    http.put("/os-services/disable", json={"host": "hv-z1", "binary": "nova-compute"})
    zones = {
        z["zoneName"]: z for z in http.get("/os-availability-zone").json()["availabilityZoneInfo"]
    }
    assert zones["az-one"]["zoneState"]["available"] is False
    http.put("/os-services/enable", json={"host": "hv-z1", "binary": "nova-compute"})
    http.post(f"/os-aggregates/{aggregate['id']}/action", json={"remove_host": {"host": "hv-z1"}})
    http.delete(f"/os-aggregates/{aggregate['id']}")
    names = {
        z["zoneName"] for z in http.get("/os-availability-zone").json()["availabilityZoneInfo"]
    }
    assert "az-one" not in names


def test_internal_zone_only_in_detail(http: httpx.Client, db: db_session.Database) -> None:
    computehosts.register_host(db, "ctl-1", binary="nova-conductor")
    internal = service_of(http, "ctl-1", binary="nova-conductor")
    assert internal["zone"] == "internal"
    names = {
        z["zoneName"] for z in http.get("/os-availability-zone").json()["availabilityZoneInfo"]
    }
    assert "internal" not in names
    detail = {
        z["zoneName"]: z
        for z in http.get("/os-availability-zone/detail").json()["availabilityZoneInfo"]
    }
    assert "nova-conductor" in detail["internal"]["hosts"]["ctl-1"]
    # Only compute services may be updated; any service may be deleted.
    assert (
        http.put(
            "/os-services/disable", json={"host": "ctl-1", "binary": "nova-conductor"}
        ).status_code
        == 400
    )
    assert http.delete(f"/os-services/{internal['id']}").status_code == 204


def test_os_hosts_before_243(http: httpx.Client, demo: httpx.Client) -> None:
    hosts = http.get("/os-hosts").json()["hosts"]
    assert {"host_name": UP_A, "service": "compute", "zone": "nova"} in hosts
    assert http.get("/os-hosts", params={"zone": "xxx"}).json()["hosts"] == []
    assert http.get("/os-hosts", params={"zone": ""}).json()["hosts"] == hosts
    resources = http.get(f"/os-hosts/{UP_A}").json()["host"]
    assert resources[0]["resource"] == {
        "host": UP_A,
        "project": "(total)",
        "cpu": 8,
        "memory_mb": 16384,
        "disk_gb": 200,
    }
    assert [r["resource"]["project"] for r in resources[:3]] == [
        "(total)",
        "(used_now)",
        "(used_max)",
    ]
    assert http.get("/os-hosts/nowhere").status_code == 404
    assert http.put("/os-hosts/nowhere", json={"status": "enable"}).status_code == 404
    assert http.put(f"/os-hosts/{UP_A}", json={}).status_code == 400
    assert http.put(f"/os-hosts/{UP_A}", json={"status": "bad"}).status_code == 400
    response = http.put(f"/os-hosts/{UP_A}", json={"status": "disable"})
    assert response.json() == {"host": UP_A, "status": "disabled"}
    assert service_of(http, UP_A)["status"] == "disabled"
    http.put(f"/os-hosts/{UP_A}", json={"status": "Enable"})
    assert http.put(f"/os-hosts/{UP_A}", json={"maintenance_mode": "enable"}).status_code == 501
    assert http.get(f"/os-hosts/{UP_A}/reboot").status_code == 501
    assert http.get("/os-hosts/nowhere/startup").status_code == 404
    assert demo.get("/os-hosts").status_code == 403
    assert http.get("/os-hosts", headers=computehosts.at(http, "2.43")).status_code == 404


# --- extensions -----------------------------------------------------------------------------


def test_extension_list_and_show(http: httpx.Client, demo: httpx.Client) -> None:
    listed = demo.get("/extensions").json()["extensions"]
    aliases = {e["alias"] for e in listed}
    assert {"os-services", "os-aggregates", "os-hypervisors", "os-server-groups"} <= aliases
    assert "os-cloudpipe" not in aliases
    entry = http.get("/extensions/os-aggregates").json()["extension"]
    assert entry == {
        "alias": "os-aggregates",
        "description": "Admin-only aggregate administration.",
        "links": [],
        "name": "Aggregates",
        "namespace": "http://docs.openstack.org/compute/ext/fake_xml",
        "updated": "2014-12-03T00:00:00Z",
    }
    missing = http.get("/extensions/os-cloudpipe")
    assert missing.status_code == 404
    assert missing.json()["itemNotFound"]["code"] == 404


def test_local_host_registered_by_its_agent_reports_uptime(
    cloud: cloudfixture.Cloud, http: httpx.Client
) -> None:
    """The all-in-one's own agent (fake driver) registers this machine's host."""
    local = runtime.get().hostname
    deadline = time.monotonic() + 20
    while not services(http, host=local):
        assert time.monotonic() < deadline, "the local compute agent did not register"
        time.sleep(0.2)
    assert service_of(http, local)["state"] == "up"
    node = hypervisor(http, local)
    uptime = http.get(f"/os-hypervisors/{node['id']}/uptime")
    assert uptime.status_code == 200, uptime.text
    assert " up " in uptime.json()["hypervisor"]["uptime"]
    assert " up " in hypervisor(http, local, "2.88")["uptime"]
