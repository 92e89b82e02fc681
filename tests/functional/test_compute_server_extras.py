"""A server's diagnostics and password, external events from other services, and the
instance usage audit log."""

from __future__ import annotations

import datetime
import urllib.parse
from typing import Any

import httpx
import pytest

from tests import cloudfixture
from tests.functional.serveractions import Compute, cloud, error

__all__ = ["cloud"]

MISSING = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def demo(cloud: cloudfixture.Cloud) -> Compute:
    return Compute(cloud, cloud.token("demo", project="demo"))


@pytest.fixture(scope="module")
def alt(cloud: cloudfixture.Cloud) -> Compute:
    return Compute(cloud, cloud.token("alt_demo", project="alt_demo"))


@pytest.fixture(scope="module")
def admin(cloud: cloudfixture.Cloud) -> Compute:
    return Compute(cloud, cloud.token())


@pytest.fixture(scope="module")
def server(demo: Compute) -> dict[str, Any]:
    return demo.boot("extras", flavor="84")  # m1.micro


def ports(cloud: cloudfixture.Cloud, token: str, server_id: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{cloud.base_url}/networking/v2.0/ports",
        params={"device_id": server_id},
        headers={"X-Auth-Token": token},
    )
    return list(response.json()["ports"])


# --- diagnostics ------------------------------------------------------------------------------


def test_diagnostics_in_the_standard_format(
    admin: Compute, demo: Compute, server: dict[str, Any]
) -> None:
    response = admin.at("2.48").http.get(f"/servers/{server['id']}/diagnostics")
    assert response.status_code == 200, response.text
    found = response.json()
    assert found["state"] == "running" and found["driver"] == "libvirt"
    assert found["hypervisor"] == "fake"
    flavor = server["flavor"]  # embedded at 2.47+
    assert found["num_cpus"] == flavor["vcpus"] == len(found["cpu_details"])
    assert found["memory_details"] == {"maximum": flavor["ram"], "used": 0}
    macs = [p["mac_address"] for p in ports(demo.cloud, demo.token, server["id"])]
    assert [n["mac_address"] for n in found["nic_details"]] == macs
    assert found["num_nics"] == len(macs) == 1
    assert found["num_disks"] == len(found["disk_details"]) == 1
    assert isinstance(found["uptime"], int) and found["config_drive"] is False


def test_diagnostics_before_2_48_and_who_may_see_them(
    admin: Compute, demo: Compute, server: dict[str, Any]
) -> None:
    legacy = admin.at("2.47").http.get(f"/servers/{server['id']}/diagnostics").json()
    assert legacy["cpu0_time"] == 0 and legacy["memory"] == server["flavor"]["ram"] * 1024
    assert "vda_read" in legacy and any(k.startswith("tap") for k in legacy)
    error(demo.http.get(f"/servers/{server['id']}/diagnostics"), 403)
    error(admin.http.get(f"/servers/{MISSING}/diagnostics"), 404)


def test_diagnostics_of_a_stopped_server_are_a_conflict(admin: Compute, demo: Compute) -> None:
    stopped = demo.boot("stopped-diag")
    assert demo.action(stopped["id"], {"os-stop": None}).status_code == 202
    demo.wait(stopped["id"], "SHUTOFF")
    message = error(admin.http.get(f"/servers/{stopped['id']}/diagnostics"), 409)
    assert "power state shutdown" in message


# --- password ---------------------------------------------------------------------------------


def test_password_is_empty_until_a_metadata_service_sets_one(
    demo: Compute, alt: Compute, server: dict[str, Any]
) -> None:
    path = f"/servers/{server['id']}/os-server-password"
    assert demo.http.get(path).json() == {"password": ""}
    assert demo.http.delete(path).status_code == 204
    assert demo.http.get(path).json() == {"password": ""}
    error(alt.http.get(path), 404)
    error(alt.http.delete(path), 404)
    error(demo.http.get(f"/servers/{MISSING}/os-server-password"), 404)


# --- external events --------------------------------------------------------------------------


def test_external_events_are_answered_one_by_one(
    admin: Compute, demo: Compute, server: dict[str, Any]
) -> None:
    event = {"name": "network-changed", "server_uuid": server["id"]}
    ok = admin.http.post("/os-server-external-events", json={"events": [event]})
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"events": [{**event, "status": "completed", "code": 200}]}
    mixed = admin.at("2.51").http.post(
        "/os-server-external-events",
        json={
            "events": [
                {"name": "network-vif-plugged", "server_uuid": server["id"], "tag": "p"},
                {"name": "network-vif-plugged", "server_uuid": MISSING},
                {"name": "volume-extended", "server_uuid": server["id"]},
            ]
        },
    )
    assert mixed.status_code == 207, mixed.text
    codes = [(e["code"], e["status"]) for e in mixed.json()["events"]]
    assert codes == [(200, "completed"), (404, "failed"), (400, "failed")]
    error(demo.http.post("/os-server-external-events", json={"events": [event]}), 403)
    too_new = {"name": "volume-extended", "server_uuid": server["id"], "tag": "v"}
    error(admin.at("2.50").http.post("/os-server-external-events", json={"events": [too_new]}), 400)
    error(admin.http.post("/os-server-external-events", json={"events": []}), 400)


def test_a_volume_extended_event_is_an_instance_action(
    admin: Compute, demo: Compute, server: dict[str, Any]
) -> None:
    event = {"name": "volume-extended", "server_uuid": server["id"], "tag": MISSING}
    answer = admin.at("2.51").http.post("/os-server-external-events", json={"events": [event]})
    assert answer.status_code == 200, answer.text
    actions = demo.http.get(f"/servers/{server['id']}/os-instance-actions").json()
    assert "extend_volume" in [a["action"] for a in actions["instanceActions"]]


# --- usage audit ------------------------------------------------------------------------------


def test_the_last_month_audit_predates_the_host(admin: Compute) -> None:
    log = admin.http.get("/os-instance_usage_audit_log").json()["instance_usage_audit_logs"]
    today = datetime.datetime.now(datetime.UTC)
    assert log["period_ending"] == f"{today.year:04d}-{today.month:02d}-01 00:00:00"
    # This cloud's compute host registered this month: it never audited last month.
    assert log["num_hosts"] == log["num_hosts_not_run"] == len(log["hosts_not_run"]) >= 1
    assert log["log"] == {} and log["num_hosts_done"] == 0
    assert log["overall_status"] == f"0 of {log['num_hosts']} hosts done. 0 errors."


def test_a_later_period_counts_the_servers_that_ran(admin: Compute, server: dict[str, Any]) -> None:
    before = urllib.parse.quote("2099-01-15 00:00:00")
    log = admin.http.get(f"/os-instance_usage_audit_log/{before}").json()
    audit = log["instance_usage_audit_log"]
    assert (audit["period_beginning"], audit["period_ending"]) == (
        "2098-12-01 00:00:00",
        "2099-01-01 00:00:00",
    )
    assert audit["overall_status"] == "ALL hosts done. 0 errors."
    assert audit["total_instances"] >= 1
    (entry,) = audit["log"].values()
    assert entry["state"] == "DONE" and entry["instances"] == audit["total_instances"]


def test_the_audit_log_is_for_admins_with_valid_times(admin: Compute, demo: Compute) -> None:
    error(admin.http.get("/os-instance_usage_audit_log/invalid_time"), 400)
    with_fraction = urllib.parse.quote("2030-05-02 10:00:00.5")
    assert admin.http.get(f"/os-instance_usage_audit_log/{with_fraction}").status_code == 200
    error(demo.http.get("/os-instance_usage_audit_log"), 403)
    error(demo.http.get(f"/os-instance_usage_audit_log/{with_fraction}"), 403)
